// regula WebAssembly kernels: the twins of the weightnorm WGSL family (src/wasm/kernels/weightnorm.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
