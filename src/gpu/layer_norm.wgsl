// y[r, :] = (x[r, :] - mean) / sqrt(var + eps) * gamma + beta, one workgroup per row.
// Dispatched by encoder.rs. Bindings: 0 params, 1 x [rows, dim], 2 gamma [dim],
// 3 beta [dim], 4 y [rows, dim].
struct Params { rows: u32, dim: u32, eps: f32, p0: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const WG: u32 = 64u;
var<workgroup> red: array<f32, 64>;

fn reduce_sum(l: u32, v: f32) -> f32 {
    red[l] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s /= 2u) {
        if (l < s) { red[l] += red[l + s]; }
        workgroupBarrier();
    }
    let out = red[0];
    workgroupBarrier();
    return out;
}

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) g: vec3<u32>,
        @builtin(num_workgroups) nw: vec3<u32>) {
    let row = g.y * nw.x + g.x;
    if (row >= p.rows) { return; }
    let l = lid.x;
    let base = row * p.dim;
    var s = 0.0;
    for (var d = l; d < p.dim; d += WG) { s += x[base + d]; }
    let mean = reduce_sum(l, s) / f32(p.dim);
    var s2 = 0.0;
    for (var d = l; d < p.dim; d += WG) {
        let c = x[base + d] - mean;
        s2 += c * c;
    }
    let variance = reduce_sum(l, s2) / f32(p.dim);
    let inv = 1.0 / sqrt(variance + p.eps);
    for (var d = l; d < p.dim; d += WG) {
        y[base + d] = (x[base + d] - mean) * inv * gamma[d] + beta[d];
    }
}
