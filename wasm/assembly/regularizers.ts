// regula WebAssembly kernels: the twins of the regularizers WGSL family (src/wasm/kernels/regularizers.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
