const TONES: Record<string, string> = {
  Running: "running",
  Succeeded: "succeeded",
  Completed: "succeeded",
  Ready: "succeeded",
  Failed: "failed",
  Error: "failed",
  Pending: "pending",
  Starting: "pending",
  Creating: "pending",
  NotReady: "pending",
  Enabled: "succeeded",
};

export function StatusBadge({ phase }: { phase: string }) {
  const tone = TONES[phase] ?? "unknown";
  return (
    <span className={`badge badge-${tone}`} data-phase={phase}>
      <span className="badge-dot" aria-hidden="true" />
      {phase}
    </span>
  );
}
