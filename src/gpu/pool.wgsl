// One vector per sequence: CLS (token 0) or the mean over real tokens, then
// optionally L2-normalised, one workgroup per sequence. Dispatched by
// encoder.rs. Bindings: 0 params, 1 hidden [batch, len, dim], 2 mask
// [batch, len], 3 out [batch, dim].
struct Params { batch: u32, len: u32, dim: u32, mean: u32, normalize: u32, p0: u32, p1: u32, p2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> hidden: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const WG: u32 = 64u;
var<workgroup> red: array<f32, 64>;

fn pooled(b: u32, d: u32) -> f32 {
    let base = b * p.len * p.dim;
    if (p.mean == 0u) { return hidden[base + d]; }
    var s = 0.0;
    var n = 0.0;
    for (var t = 0u; t < p.len; t++) {
        let mk = mask[b * p.len + t];
        s += hidden[base + t * p.dim + d] * mk;
        n += mk;
    }
    return s / max(n, 1e-9);
}

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) g: vec3<u32>,
        @builtin(num_workgroups) nw: vec3<u32>) {
    let b = g.y * nw.x + g.x;
    if (b >= p.batch) { return; }
    let l = lid.x;
    var ss = 0.0;
    for (var d = l; d < p.dim; d += WG) {
        let v = pooled(b, d);
        ss += v * v;
    }
    red[l] = ss;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s /= 2u) {
        if (l < s) { red[l] += red[l + s]; }
        workgroupBarrier();
    }
    var scale = 1.0;
    if (p.normalize != 0u) { scale = 1.0 / max(sqrt(red[0]), 1e-12); }
    for (var d = l; d < p.dim; d += WG) { out[b * p.dim + d] = pooled(b, d) * scale; }
}
