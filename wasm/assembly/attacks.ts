// regula WebAssembly kernels: the twins of the attacks WGSL family (src/wasm/kernels/attacks.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
