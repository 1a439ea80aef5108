// regula WebAssembly kernels: the twins of the loss WGSL family (src/wasm/kernels/loss.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
