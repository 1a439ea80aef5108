// regula WebAssembly kernels: the twins of the random WGSL family (src/wasm/kernels/random.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
