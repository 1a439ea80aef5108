// regula WebAssembly kernels: the twins of the layers WGSL family (src/wasm/kernels/layers.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
