// Partial top-k: workgroup (t, q) keeps the best k of candidates
// t*1024 .. t*1024+1023 of query q, by k rounds of a parallel arg-max
// (higher score first, then lower ordinal; a NaN, i.e. an unwritten score,
// wins, so poisoned buffers surface). Run again over its own output until one
// tile is left: the final merge. Dispatched by scan.rs. Bindings: 0 params,
// 1 in scores [nq, stride], 2 in ordinals [nq, stride] (unless implicit: the
// position is the ordinal), 3 out scores [nq, tiles*k], 4 out ordinals.
struct Params { n: u32, k: u32, tiles: u32, implicit: u32, stride: u32, p0: u32, p1: u32, p2: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> in_s: array<f32>;
@group(0) @binding(2) var<storage, read> in_i: array<u32>;
@group(0) @binding(3) var<storage, read_write> out_s: array<f32>;
@group(0) @binding(4) var<storage, read_write> out_i: array<u32>;

const WG: u32 = 256u;
const TILE: u32 = 1024u;
const EMPTY_S: f32 = -3.4e38;
const EMPTY_I: u32 = 0xffffffffu;

var<workgroup> ss: array<f32, 1024>;
var<workgroup> si: array<u32, 1024>;
var<workgroup> rs: array<f32, 256>;
var<workgroup> ri: array<u32, 256>;
var<workgroup> rslot: array<u32, 256>;

fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn better(as_: f32, ai: u32, bs: f32, bi: u32) -> bool {
    if (is_nan(as_)) { return !is_nan(bs) || ai < bi; }
    if (is_nan(bs)) { return false; }
    return as_ > bs || (as_ == bs && ai < bi);
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) g: vec3<u32>) {
    let l = lid.x;
    let t = g.x;
    let q = g.y;
    for (var e = 0u; e < TILE / WG; e++) {
        let slot = l + e * WG;
        let pos = t * TILE + slot;
        if (pos < p.n) {
            ss[slot] = in_s[q * p.stride + pos];
            if (p.implicit != 0u) { si[slot] = pos; } else { si[slot] = in_i[q * p.stride + pos]; }
        } else {
            ss[slot] = EMPTY_S;
            si[slot] = EMPTY_I;
        }
    }
    workgroupBarrier();
    for (var r = 0u; r < p.k; r++) {
        var bs = ss[l];
        var bi = si[l];
        var bslot = l;
        for (var e = 1u; e < TILE / WG; e++) {
            let slot = l + e * WG;
            if (better(ss[slot], si[slot], bs, bi)) {
                bs = ss[slot];
                bi = si[slot];
                bslot = slot;
            }
        }
        rs[l] = bs;
        ri[l] = bi;
        rslot[l] = bslot;
        workgroupBarrier();
        for (var s = WG / 2u; s > 0u; s /= 2u) {
            if (l < s && better(rs[l + s], ri[l + s], rs[l], ri[l])) {
                rs[l] = rs[l + s];
                ri[l] = ri[l + s];
                rslot[l] = rslot[l + s];
            }
            workgroupBarrier();
        }
        if (l == 0u) {
            let o = q * p.tiles * p.k + t * p.k + r;
            out_s[o] = rs[0];
            out_i[o] = ri[0];
            ss[rslot[0]] = EMPTY_S;
            si[rslot[0]] = EMPTY_I;
        }
        workgroupBarrier();
    }
}
