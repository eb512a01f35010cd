// Status messages as users read them. A failed step's message is its log's tail:
// "step failed (exit status 1):", what the step printed, then a Python traceback
// that starts in ketch's own worker frames. Tables show one line of it (the
// last: the exception); detail pages show the traceback once, from the user's
// first frame. Pure functions: no React here.

const TRACEBACK_HEAD = "Traceback (most recent call last):";
const FRAME = /^\s+File "(.*)", line \d+, in /;
// ketch's own modules, installed (site-packages) or from a checkout (src/ketch):
// the worker and executor frames every lightweight step's traceback starts with.
const KETCH_FILE = /[\\/](?:site-packages|dist-packages|src)[\\/]ketch[\\/]/;

/** The last non-blank line of a message (a traceback's exception line), trimmed. */
export function lastLine(message: string | null | undefined): string {
  const lines = (message ?? "").split("\n");
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = (lines[i] ?? "").trim();
    if (line) return line;
  }
  return "";
}

export interface Traceback {
  /** The traceback as printed, from its first "Traceback" line to the end. */
  raw: string;
  /** The same with each block's leading frames in ketch's own modules dropped. */
  text: string;
  /** How many frames were dropped. */
  hidden: number;
}

export interface Failure {
  /** The first line without its trailing colon: "step failed (exit status 1)". */
  headline: string;
  /** The exception line ("ValueError: exploded: bad data"), else the last line. */
  error: string;
  /** The Python traceback in the message, if there is one. */
  traceback: Traceback | null;
}

function isKetchFrame(line: string): boolean {
  const m = FRAME.exec(line);
  return m !== null && KETCH_FILE.test(m[1] ?? "");
}

/**
 * Drop the leading frames of each traceback block that are ketch's own (a
 * frame is its `File ...` line and the indented source and caret lines under
 * it). Frames after the first user frame stay: ketch code the user called is
 * part of their story. A block made only of ketch frames (a bug in ketch) is
 * kept whole.
 */
export function trimKetchFrames(raw: string): { text: string; hidden: number } {
  const lines = raw.split("\n");
  const out: string[] = [];
  let hidden = 0;
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] ?? "";
    out.push(line);
    i++;
    if (line.trim() !== TRACEBACK_HEAD) continue;
    // Frames of this block: runs of indented lines, each frame opened by File.
    const frames: string[][] = [];
    while (i < lines.length && FRAME.test(lines[i] ?? "")) {
      const frame = [lines[i] ?? ""];
      i++;
      while (i < lines.length && /^\s/.test(lines[i] ?? "") && !FRAME.test(lines[i] ?? "")) {
        frame.push(lines[i] ?? "");
        i++;
      }
      frames.push(frame);
    }
    let skip = 0;
    while (skip < frames.length && isKetchFrame(frames[skip]?.[0] ?? "")) skip++;
    if (skip === frames.length) skip = 0;
    hidden += skip;
    for (const frame of frames.slice(skip)) out.push(...frame);
  }
  return { text: out.join("\n"), hidden };
}

/** Split a failure message into its headline, exception line and traceback. */
export function parseFailure(message: string | null | undefined): Failure {
  const msg = (message ?? "").replace(/\s+$/, "");
  const first = msg.split("\n", 1)[0] ?? "";
  const headline = first.replace(/:\s*$/, "");
  const at = msg.indexOf(TRACEBACK_HEAD);
  let traceback: Traceback | null = null;
  if (at >= 0) {
    const raw = msg.slice(at);
    traceback = { raw, ...trimKetchFrames(raw) };
  }
  return { headline, error: lastLine(msg), traceback };
}

/**
 * Where the failure's traceback starts in a step's log (its message is the
 * log's tail, so the same text ends the log), or -1 when the log does not
 * hold it.
 */
export function tracebackOffset(log: string, traceback: Traceback | null): number {
  if (!traceback) return -1;
  return log.lastIndexOf(traceback.raw);
}
