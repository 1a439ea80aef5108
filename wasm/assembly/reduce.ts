// regula WebAssembly kernels: the twins of the reduce WGSL family (src/wasm/kernels/reduce.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
