// regula WebAssembly kernels: the twins of the metrics WGSL family (src/wasm/kernels/metrics.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
