// KFP metrics artifacts drawn from their metadata: scalar Metrics as a table,
// a ClassificationMetrics confusion matrix as a shaded grid, its ROC curve
// (confidenceMetrics) as an SVG line plot.

export interface ConfusionMatrix {
  annotationSpecs?: { displayName?: string }[];
  rows?: { row?: number[] }[];
}

export interface ConfidencePoint {
  confidenceThreshold?: number;
  recall?: number;
  falsePositiveRate?: number;
}

export function formatNumber(v: unknown): string {
  if (typeof v === "number") {
    if (Number.isInteger(v)) return String(v);
    return Math.abs(v) >= 1e-3 && Math.abs(v) < 1e6 ? String(Number(v.toPrecision(6))) : v.toExponential(4);
  }
  if (v === null || v === undefined) return "—";
  return typeof v === "string" ? v : JSON.stringify(v);
}

/** Scalar metrics (`{name: value}`), KFP's `display_name` left out. */
export function scalarMetrics(metadata: Record<string, unknown> | undefined): [string, unknown][] {
  return Object.entries(metadata ?? {}).filter(([k]) => k !== "display_name");
}

export function MetricsTable({ metadata }: { metadata: Record<string, unknown> | undefined }) {
  const rows = scalarMetrics(metadata);
  if (rows.length === 0) return <p className="muted small">No metrics logged.</p>;
  return (
    <table className="table compact metrics-table" data-testid="metrics-table">
      <thead>
        <tr>
          <th>Metric</th>
          <th className="num">Value</th>
        </tr>
      </thead>
      <tbody>
        {rows.map(([k, v]) => (
          <tr key={k} data-metric={k}>
            <td>{k}</td>
            <td className="num">{formatNumber(v)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function ConfusionMatrixGrid({ matrix, caption }: { matrix: ConfusionMatrix; caption?: string }) {
  const labels = (matrix.annotationSpecs ?? []).map((a, i) => a.displayName ?? String(i));
  const rows = (matrix.rows ?? []).map((r) => r.row ?? []);
  const max = Math.max(1, ...rows.flat());
  return (
    <div className="confusion" data-testid="confusion-matrix">
      {caption && <div className="muted small">{caption}</div>}
      <table className="confusion-grid">
        <thead>
          <tr>
            <th className="corner">
              <span>actual ↓ / predicted →</span>
            </th>
            {labels.map((l) => (
              <th key={l}>{l}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row, i) => (
            <tr key={i}>
              <th>{labels[i] ?? i}</th>
              {row.map((v, j) => {
                const a = v / max;
                return (
                  <td
                    key={j}
                    data-cell={`${i},${j}`}
                    style={{ background: `rgba(13, 148, 136, ${0.08 + 0.85 * a})`, color: a > 0.55 ? "#fff" : undefined }}
                  >
                    {v}
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function RocCurve({ points }: { points: ConfidencePoint[] }) {
  const W = 260;
  const H = 220;
  const P = 32;
  const pts = points
    .filter((p) => typeof p.falsePositiveRate === "number" && typeof p.recall === "number")
    .map((p) => [p.falsePositiveRate as number, p.recall as number] as const)
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  if (pts.length === 0) return null;
  const sx = (x: number) => P + x * (W - P - 8);
  const sy = (y: number) => H - P - y * (H - P - 8);
  let auc = 0;
  for (let i = 1; i < pts.length; i++) {
    const [x0, y0] = pts[i - 1] as readonly [number, number];
    const [x1, y1] = pts[i] as readonly [number, number];
    auc += (x1 - x0) * (y0 + y1) / 2;
  }
  const d = pts.map(([x, y], i) => `${i ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ");
  return (
    <figure className="roc" data-testid="roc-curve">
      <svg width={W} height={H} role="img" aria-label={`ROC curve, AUC ${auc.toFixed(3)}`}>
        <rect x={sx(0)} y={sy(1)} width={sx(1) - sx(0)} height={sy(0) - sy(1)} className="plot-frame" />
        {[0.25, 0.5, 0.75].map((g) => (
          <g key={g} className="plot-grid">
            <line x1={sx(g)} x2={sx(g)} y1={sy(0)} y2={sy(1)} />
            <line x1={sx(0)} x2={sx(1)} y1={sy(g)} y2={sy(g)} />
          </g>
        ))}
        <line className="plot-diagonal" x1={sx(0)} y1={sy(0)} x2={sx(1)} y2={sy(1)} />
        <path className="plot-line" d={d} />
        {pts.map(([x, y], i) => (
          <circle key={i} className="plot-point" cx={sx(x)} cy={sy(y)} r={2.5} />
        ))}
        <text className="plot-axis" x={(sx(0) + sx(1)) / 2} y={H - 6} textAnchor="middle">
          false positive rate
        </text>
        <text className="plot-axis" transform={`translate(11,${(sy(0) + sy(1)) / 2}) rotate(-90)`} textAnchor="middle">
          true positive rate
        </text>
        <text className="plot-tick" x={sx(0)} y={sy(0) + 13} textAnchor="middle">0</text>
        <text className="plot-tick" x={sx(1)} y={sy(0) + 13} textAnchor="middle">1</text>
        <text className="plot-tick" x={sx(0) - 6} y={sy(1) + 4} textAnchor="end">1</text>
      </svg>
      <figcaption className="muted small">ROC · AUC {auc.toFixed(3)}</figcaption>
    </figure>
  );
}
