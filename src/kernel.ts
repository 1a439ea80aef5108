/**
 * Kernel descriptions and the uniform-parameter layout derived from the WGSL
 * itself: a shader declares `struct Params { m: u32, n: u32, alpha: f32 }` and
 * a `var<uniform>` of that type; the byte layout is read from that text, so no
 * byte offsets are counted by hand on the TypeScript side. Both backends read
 * it: the WebGPU runtime to build bind groups and uniform buffers, the
 * WebAssembly runtime to check a twin's bindings.
 *
 * @module
 */

/** A compute shader and its entry point. */
export interface Kernel {
  /** Name used in cache keys and error messages ("matmul"). */
  name: string;
  /** WGSL source. */
  code: string;
  /** Entry point; default "main". */
  entry?: string;
}

/** Scalar types allowed in a `Params` struct. */
type ScalarType = "u32" | "i32" | "f32";

/** Field layout of a uniform `Params` struct. */
export interface ParamsLayout {
  fields: { name: string; type: ScalarType; offset: number }[];
  /** Byte size, rounded up to 16 as WGSL requires for uniform structs. */
  size: number;
  /** The `@binding` of the uniform variable. */
  binding: number;
}

/** Storage bindings and the optional uniform, as declared in a shader. */
export interface BindingLayout {
  /** `@binding` numbers of `var<storage, ...>` in ascending order. */
  storage: number[];
  /** Access mode of each entry of `storage` ("read" or "read_write"). */
  access: ("read" | "read_write")[];
  params: ParamsLayout | null;
}

const layoutCache = new Map<string, BindingLayout>();

/**
 * Reads the bindings of group 0 and the layout of the uniform struct from WGSL
 * source. Only 4-byte scalar fields are supported in the uniform struct; any
 * other field type is rejected so a layout can never be silently wrong.
 */
export function bindingLayout(kernel: Kernel): BindingLayout {
  const hit = layoutCache.get(kernel.code);
  if (hit) return hit;
  const code = kernel.code.replace(/\/\/[^\n]*/g, "");
  const storage: { binding: number; access: "read" | "read_write" }[] = [];
  let params: ParamsLayout | null = null;
  const varRe = /@group\(0\)\s*@binding\((\d+)\)\s*var<([^>]+)>\s*(\w+)\s*:\s*([\w<>, ]+)\s*;/g;
  for (const m of code.matchAll(varRe)) {
    const binding = Number(m[1]);
    const space = m[2].split(",")[0].trim();
    if (space === "storage") {
      const mode = m[2].split(",")[1]?.trim() ?? "read";
      storage.push({ binding, access: mode === "read_write" ? "read_write" : "read" });
    } else if (space === "uniform") {
      if (params) throw new Error(`Kernel '${kernel.name}': more than one uniform binding`);
      params = parseStruct(kernel, code, m[4].trim(), binding);
    }
  }
  storage.sort((a, b) => a.binding - b.binding);
  const layout = {
    storage: storage.map((s) => s.binding),
    access: storage.map((s) => s.access),
    params,
  };
  layoutCache.set(kernel.code, layout);
  return layout;
}

function parseStruct(kernel: Kernel, code: string, type: string, binding: number): ParamsLayout {
  const m = new RegExp(`struct\\s+${type}\\s*\\{([^}]*)\\}`).exec(code);
  if (!m) throw new Error(`Kernel '${kernel.name}': uniform struct '${type}' not found`);
  const fields: ParamsLayout["fields"] = [];
  let offset = 0;
  for (const part of m[1].split(",")) {
    const f = part.trim();
    if (!f) continue;
    const fm = /^(\w+)\s*:\s*(\w+)$/.exec(f);
    if (!fm || !["u32", "i32", "f32"].includes(fm[2])) {
      throw new Error(
        `Kernel '${kernel.name}': uniform field '${f}' is not a 4-byte scalar (u32, i32, f32)`,
      );
    }
    fields.push({ name: fm[1], type: fm[2] as ScalarType, offset });
    offset += 4;
  }
  return { fields, size: Math.max(16, Math.ceil(offset / 16) * 16), binding };
}

/**
 * Writes `values` into `view` at `base` following `layout`. Every field must
 * be given, and no unknown name is accepted.
 */
export function writeParams(
  kernel: Kernel,
  layout: ParamsLayout,
  values: Record<string, number>,
  view: DataView,
  base: number,
): void {
  for (const f of layout.fields) {
    const v = values[f.name];
    if (v === undefined) throw new Error(`Kernel '${kernel.name}': parameter '${f.name}' missing`);
    if (f.type === "f32") view.setFloat32(base + f.offset, v, true);
    else if (f.type === "u32") {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
        throw new Error(`Kernel '${kernel.name}': parameter '${f.name}'=${v} is not a u32`);
      }
      view.setUint32(base + f.offset, v, true);
    } else view.setInt32(base + f.offset, v, true);
  }
  if (Object.keys(values).length !== layout.fields.length) {
    const known = new Set(layout.fields.map((f) => f.name));
    const extra = Object.keys(values).filter((k) => !known.has(k));
    throw new Error(`Kernel '${kernel.name}': unknown parameter(s) ${extra.join(", ")}`);
  }
}
