// y = act(x W^T + bias) [+ residual], W [n, k] stored as f32, Q8_0 or Q4_0.
// Dispatched by encoder.rs (Matrix::dispatch). Bindings:
//   0 params (uniform), 1 x [m, k], 2 w (words), 3 scales [n, k/32],
//   4 bias [n], 5 residual [m, n] (read when has_res), 6 y [m, n].
// W[o, i] is element o*k + i of w: its layout (kind) and dequantisation are in
// dequant.wgsl, which encoder.rs appends to this source.
struct Params { m: u32, n: u32, k: u32, kind: u32, act: u32, has_res: u32, p0: u32, p1: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> scales: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> res: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;

const TILE: u32 = 16u;
const KB: u32 = 32u;
var<workgroup> xs: array<array<f32, 33>, 16>;
var<workgroup> ws: array<array<f32, 33>, 16>;

fn weight(o: u32, i: u32) -> f32 {
    return dequant(p.kind, o * p.k + i);
}

// erf by Abramowitz & Stegun 7.1.26 refined (max error ~1.2e-7).
fn erf_approx(v: f32) -> f32 {
    let s = sign(v);
    let a = abs(v);
    let t = 1.0 / (1.0 + 0.5 * a);
    let r = t * exp(-a * a - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
        + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
    return s * (1.0 - r);
}

fn activate(v: f32) -> f32 {
    switch p.act {
        case 1u: { return 0.5 * v * (1.0 + erf_approx(v * 0.70710678118654752)); }
        case 2u: {
            let u = 0.7978845608028654 * (v + 0.044715 * v * v * v);
            return 0.5 * v * (1.0 + tanh(clamp(u, -15.0, 15.0)));
        }
        case 3u: { return max(v, 0.0); }
        default: { return v; }
    }
}

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) g: vec3<u32>) {
    let row = g.y * TILE + l.y;
    let col = g.x * TILE + l.x;
    let wrow = g.x * TILE + l.y;
    var acc = 0.0;
    for (var k0 = 0u; k0 < p.k; k0 += KB) {
        for (var c = l.x; c < KB; c += TILE) {
            let kk = k0 + c;
            var xv = 0.0;
            if (row < p.m && kk < p.k) { xv = x[row * p.k + kk]; }
            xs[l.y][c] = xv;
            var wv = 0.0;
            if (wrow < p.n && kk < p.k) { wv = weight(wrow, kk); }
            ws[l.y][c] = wv;
        }
        workgroupBarrier();
        for (var c = 0u; c < KB; c++) {
            acc += xs[l.y][c] * ws[l.x][c];
        }
        workgroupBarrier();
    }
    if (row < p.m && col < p.n) {
        var v = activate(acc + bias[col]);
        if (p.has_res != 0u) { v += res[row * p.n + col]; }
        y[row * p.n + col] = v;
    }
}
