// The figures' CSS, added once per page by the runtime.
export const CSS = `
.optbook-figure{margin:1em 0}
.optbook-fig-controls{display:flex;flex-wrap:wrap;gap:.3em 1.6em;align-items:center;margin:0 0 .3em;font-size:.9em}
.optbook-fig-control{display:flex;align-items:center;gap:.5em;margin:0}
.optbook-fig-control input[type=range]{width:11em;max-width:45vw}
.optbook-fig-value{font-family:monospace;min-width:4.5em}
.optbook-fig-headline{font-size:.9em;min-height:1.3em}
.optbook-fig-panels{display:flex;flex-wrap:wrap;gap:.5em}
.optbook-fig-panels-grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,280px),1fr))}
.optbook-fig-svg{flex:1 1 280px;max-width:min(100%,460px);height:auto;font-size:11px}
.optbook-fig-title{font-size:12px}
.optbook-fig-axis{font-size:11px}
.optbook-fig-tip{font-size:10px;font-family:monospace}
.optbook-fig-readout,.optbook-fig-key{list-style:none;padding:0;margin:.2em 0;font-size:.85em;font-family:monospace}
.optbook-fig-readout li,.optbook-fig-key li{margin:0}
.optbook-fig-swatch{display:inline-block;width:.9em;height:.9em;margin-right:.4em;vertical-align:-.1em}
.optbook-phase-region{stroke:none}
.optbook-fig-hover{font-size:.8em;font-family:monospace;min-height:2.6em;margin:.2em 0;overflow-wrap:anywhere}
.optbook-fig-svg:focus{outline:2px solid #1f77b4}
.optbook-fig-legend{flex:1 1 100%;max-width:min(100%,360px)}
`;
