// regula WebAssembly kernels: the twins of the layernorm WGSL family (src/wasm/kernels/layernorm.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
