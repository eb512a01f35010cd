// A small Markdown renderer that builds React elements only: no HTML string is
// ever injected, so a Markdown artifact cannot run script in the dashboard.
// Covers what KFP Markdown artifacts use: headings, paragraphs, lists, code
// blocks, block quotes, tables, rules, emphasis, inline code and http(s) links.
import type { ReactNode } from "react";

const SAFE_URL = /^(https?:|mailto:|#|\/)/i;

function inline(text: string, key: string): ReactNode[] {
  const out: ReactNode[] = [];
  // Order matters: code first (its content is literal), then links, bold, italic.
  const re = /(`[^`]+`)|(\[([^\]]+)\]\(([^)\s]+)\))|(\*\*([^*]+)\*\*|__([^_]+)__)|(\*([^*]+)\*|_([^_]+)_)/g;
  let last = 0;
  let m: RegExpExecArray | null;
  let i = 0;
  while ((m = re.exec(text)) !== null) {
    if (m.index > last) out.push(text.slice(last, m.index));
    const k = `${key}.${i++}`;
    if (m[1]) out.push(<code key={k}>{m[1].slice(1, -1)}</code>);
    else if (m[2]) {
      const href = m[4] ?? "";
      out.push(
        SAFE_URL.test(href) ? (
          <a key={k} href={href} target="_blank" rel="noopener noreferrer">
            {inline(m[3] ?? "", k)}
          </a>
        ) : (
          <span key={k}>{m[3]}</span>
        ),
      );
    } else if (m[5]) out.push(<strong key={k}>{inline(m[6] ?? m[7] ?? "", k)}</strong>);
    else if (m[8]) out.push(<em key={k}>{inline(m[9] ?? m[10] ?? "", k)}</em>);
    last = re.lastIndex;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

function cells(line: string): string[] {
  return line
    .trim()
    .replace(/^\|/, "")
    .replace(/\|$/, "")
    .split("|")
    .map((c) => c.trim());
}

export function Markdown({ source }: { source: string }) {
  const lines = source.replace(/\r\n?/g, "\n").split("\n");
  const blocks: ReactNode[] = [];
  let i = 0;
  const key = () => `b${blocks.length}`;
  while (i < lines.length) {
    const line = lines[i] ?? "";
    if (!line.trim()) {
      i++;
      continue;
    }
    const fence = /^\s*(```|~~~)/.exec(line);
    if (fence) {
      const body: string[] = [];
      i++;
      while (i < lines.length && !(lines[i] ?? "").trim().startsWith(fence[1] ?? "```")) body.push(lines[i++] ?? "");
      i++;
      blocks.push(
        <pre key={key()} className="code">
          {body.join("\n")}
        </pre>,
      );
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) {
      const level = Math.min(6, (heading[1] ?? "#").length + 1);
      const Tag = `h${level}` as "h2";
      blocks.push(<Tag key={key()}>{inline(heading[2] ?? "", key())}</Tag>);
      i++;
      continue;
    }
    if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) {
      blocks.push(<hr key={key()} />);
      i++;
      continue;
    }
    if (line.includes("|") && /^\s*\|?\s*:?-{3,}/.test(lines[i + 1] ?? "")) {
      const head = cells(line);
      const rows: string[][] = [];
      i += 2;
      while (i < lines.length && (lines[i] ?? "").includes("|")) rows.push(cells(lines[i++] ?? ""));
      const k = key();
      blocks.push(
        <table key={k} className="table compact">
          <thead>
            <tr>
              {head.map((h, j) => (
                <th key={j}>{inline(h, `${k}h${j}`)}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((r, ri) => (
              <tr key={ri}>
                {r.map((c, j) => (
                  <td key={j}>{inline(c, `${k}r${ri}c${j}`)}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>,
      );
      continue;
    }
    const list = /^\s*([-*+]|\d+[.)])\s+/.exec(line);
    if (list) {
      const ordered = /\d/.test(list[1] ?? "");
      const items: string[] = [];
      while (i < lines.length && /^\s*([-*+]|\d+[.)])\s+/.test(lines[i] ?? "")) {
        items.push((lines[i++] ?? "").replace(/^\s*([-*+]|\d+[.)])\s+/, ""));
      }
      const k = key();
      const children = items.map((it, j) => <li key={j}>{inline(it, `${k}.${j}`)}</li>);
      blocks.push(ordered ? <ol key={k}>{children}</ol> : <ul key={k}>{children}</ul>);
      continue;
    }
    if (line.startsWith(">")) {
      const quote: string[] = [];
      while (i < lines.length && (lines[i] ?? "").startsWith(">")) quote.push((lines[i++] ?? "").replace(/^>\s?/, ""));
      blocks.push(<blockquote key={key()}>{inline(quote.join(" "), key())}</blockquote>);
      continue;
    }
    const para: string[] = [];
    while (i < lines.length && (lines[i] ?? "").trim() && !/^(#{1,6}\s|```|~~~|>|\s*([-*+]|\d+[.)])\s)/.test(lines[i] ?? "")) {
      para.push(lines[i++] ?? "");
    }
    if (para.length === 0) para.push(lines[i++] ?? "");
    blocks.push(<p key={key()}>{inline(para.join(" "), key())}</p>);
  }
  return <div className="markdown">{blocks}</div>;
}
