//! Pre-packed i8 weights for the u8 × i8 GEMM.
//!
//! Every kernel reads B in the same packed form: column panels of [`PANEL`] columns, each
//! panel a run of K-groups of [`QUAD`] consecutive k, and in a group the four k of column 0,
//! then the four k of column 1, and so on: one 64-byte line per (panel, group), which is
//! what one `vpdpbusd` on a zmm, four `sdot` on q registers, or the widening x86 paths
//! (two or four i16 `vpmaddwd` halves) consume. K is padded to a multiple of 4 and N to a
//! multiple of 16 with zero weights, which add nothing to any sum. For the AVX2 and AVX-512
//! BW kernels, which multiply in i16, each line is stored widened to i16 (128 bytes), so
//! the K loop loads operands ready for `vpmaddwd`.
//!
//! For AMX the layout is the same with each panel's group count padded to a multiple of
//! [`AMX_TILE_GROUPS`]: 16 consecutive lines of a panel are then one B tile (16 K-quads ×
//! 64 bytes), the padding is zero weights, and the VNNI kernel, which takes the panel
//! stride from [`PackedParts::groups`], reads the same packing for small batches.

use crate::error::{Error, Result, checked_mul};
use crate::gemm::PerColumn;
use crate::isa::Isa;
use crate::registry::{self, Entry, Op};

/// Columns per packed panel.
pub(crate) const PANEL: usize = 16;
/// Consecutive k per packed group.
pub(crate) const QUAD: usize = 4;
/// Groups per AMX B tile (its 16 rows); an AMX packing pads each panel to whole tiles.
pub(crate) const AMX_TILE_GROUPS: usize = 16;
/// Batches (rows of A) from which weights packed for AMX automatically run the AMX
/// kernel; smaller ones run the AVX-512 VNNI kernel on the same packing. Measured at
/// n = k = 1024, requantizing to u8, medians on a loaded machine (load 10): VNNI 17 / 23
/// / 31 / 40 µs at 1 / 2 / 3 / 4 rows, AMX 23 / 23 / 20–28 / 23 µs (the tiles cost about
/// as much for any batch up to 16: both stream the 1 MiB of weights): a tie at 2 rows.
pub(crate) const AMX_MIN_ROWS: usize = 3;

/// One packed (panel, group): 16 columns × 4 k, aligned so no vector load splits a line.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Line(pub(crate) [i8; PANEL * QUAD]);

/// How the caller's i8 weights are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeightLayout {
    /// `k × n` row-major: `b[kk · n + j]` (the GEMM's B as written).
    KByN,
    /// `n × k` row-major: `b[j · k + kk]` (PyTorch's `out × in` weight).
    NByK,
}

/// i8 weights `B` (`k × n`) packed once for the u8 × i8 GEMM, with the per-column sums
/// and weight zero points the zero-point corrections need.
///
/// Opaque, immutable after construction, `Send + Sync`: pack once, then call
/// [`crate::gemm_u8i8_packed`] from any number of threads. It records the instruction-set
/// level whose kernel it was packed for ([`PackedB::isa`]), and every call runs that kernel.
pub struct PackedB {
    k: usize,
    n: usize,
    groups: usize,
    lines: Vec<Line>,
    /// `Σk B[k][j]`, wrapping; zero in the padding columns.
    col_sums: Vec<i32>,
    /// `col_sums[j] − zb[j] · K`, wrapping (FBGEMM's `col_offsets` before the `za` factor).
    col_offsets: Vec<i32>,
    /// `zb[j]`, per column even when given per tensor; zero in the padding.
    zero_points: Vec<i32>,
    entry: &'static Entry,
    /// The kernel for batches below [`AMX_MIN_ROWS`] when the AMX level was chosen
    /// automatically; `None` when every batch runs `entry`.
    small_batch: Option<&'static Entry>,
}

impl std::fmt::Debug for PackedB {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedB")
            .field("k", &self.k)
            .field("n", &self.n)
            .field("isa", &self.entry.isa)
            .finish_non_exhaustive()
    }
}

impl PackedB {
    /// Packs `b` (`k × n` weights laid out as `layout`) with weight zero point
    /// `b_zero_point` (per tensor or one per output column) for the kernel of level `isa`
    /// (the automatic level when `None`).
    ///
    /// # Errors
    ///
    /// [`Error::SizeOverflow`] if `k × n` overflows, [`Error::InputTooSmall`] if `b` holds
    /// fewer than `k × n` values, [`Error::BadParameter`] if a per-column zero point array
    /// does not hold `n` values, [`Error::UnsupportedIsa`] if this CPU lacks `isa`, or
    /// `LOWP_ISA` names an unknown or unavailable level.
    pub fn new(
        b: &[i8],
        k: usize,
        n: usize,
        layout: WeightLayout,
        b_zero_point: PerColumn<'_, i32>,
        isa: Option<Isa>,
    ) -> Result<PackedB> {
        let needed = checked_mul(k, n, "B elements (k × n)")?;
        if b.len() < needed {
            return Err(Error::InputTooSmall {
                what: "B",
                needed,
                got: b.len(),
            });
        }
        b_zero_point.check(n, "b_zero_point")?;
        let level = Isa::choose(isa)?;
        let entry = registry::select(Op::GemmU8I8, n, level);
        let panels = n.div_ceil(PANEL);
        let groups = if entry.isa == Isa::Amx {
            k.div_ceil(QUAD * AMX_TILE_GROUPS) * AMX_TILE_GROUPS
        } else {
            k.div_ceil(QUAD)
        };
        let padded = panels * PANEL;
        // Kernels without an 8-bit multiply that is exact (AVX2, AVX-512 BW) multiply i16 by
        // i16: their lines hold the same 64 weights widened to i16, 128 bytes.
        let wide = matches!(entry.isa, Isa::Avx2 | Isa::Avx512);
        let per_line = if wide { 2 } else { 1 };
        let mut lines =
            vec![
                Line([0; PANEL * QUAD]);
                checked_mul(checked_mul(panels, groups, "B lines")?, per_line, "B lines")?
            ];
        let mut col_sums = vec![0i32; padded];
        let at = |kk: usize, j: usize| match layout {
            WeightLayout::KByN => b[kk * n + j],
            WeightLayout::NByK => b[j * k + kk],
        };
        for (j, col_sum) in col_sums.iter_mut().enumerate().take(n) {
            let (panel, col) = (j / PANEL, j % PANEL);
            for kk in 0..k {
                let v = at(kk, j);
                let (line, at) = (
                    (panel * groups + kk / QUAD) * per_line,
                    col * QUAD + kk % QUAD,
                );
                if wide {
                    let bytes = i16::from(v).to_le_bytes();
                    let half = &mut lines[line + at / 32].0;
                    half[2 * (at % 32)] = bytes[0] as i8;
                    half[2 * (at % 32) + 1] = bytes[1] as i8;
                } else {
                    lines[line].0[at] = v;
                }
                *col_sum = col_sum.wrapping_add(i32::from(v));
            }
        }
        let zero_points: Vec<i32> = (0..padded)
            .map(|j| if j < n { b_zero_point.get(j) } else { 0 })
            .collect();
        // K enters mod 2^32, as in the reference.
        let k32 = k as i32;
        let col_offsets = col_sums
            .iter()
            .zip(&zero_points)
            .map(|(&s, &z)| s.wrapping_sub(z.wrapping_mul(k32)))
            .collect();
        Ok(PackedB {
            k,
            n,
            groups,
            lines,
            col_sums,
            col_offsets,
            zero_points,
            entry,
            small_batch: (isa.is_none() && entry.isa == Isa::Amx)
                .then(|| registry::select(Op::GemmU8I8, n, Isa::Avx512Vnni)),
        })
    }

    /// Rows of B (the GEMM's depth).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns of B (the GEMM's output columns).
    pub fn n(&self) -> usize {
        self.n
    }

    /// The level whose kernel this packing was made for, and which every call runs (except
    /// that weights packed for an automatically chosen [`Isa::Amx`] run the AVX-512 VNNI
    /// kernel for batches too small for tiles to pay off).
    pub fn isa(&self) -> Isa {
        self.entry.isa
    }

    /// The registry entry of the kernel a block of `rows` rows runs: that of
    /// [`PackedB::isa`], except below [`AMX_MIN_ROWS`] rows on weights packed for an automatically chosen
    /// AMX level, where the AVX-512 VNNI kernel is faster.
    pub(crate) fn entry_for(&self, rows: usize) -> &'static Entry {
        match self.small_batch {
            Some(small) if rows < AMX_MIN_ROWS => small,
            _ => self.entry,
        }
    }

    /// The raw parts a kernel reads (see [`PackedParts`]).
    pub(crate) fn parts(&self) -> PackedParts {
        PackedParts {
            lines: self.lines.as_ptr().cast(),
            groups: self.groups,
            col_sums: self.col_sums.as_ptr(),
            col_offsets: self.col_offsets.as_ptr(),
            zero_points: self.zero_points.as_ptr(),
        }
    }
}

/// Pointers into a [`PackedB`] for kernels. Panel `p`, group `g` is the line at
/// `lines + (p · groups + g) · L`, with `L` = 64 bytes of i8, or 128 bytes of the same
/// values as little-endian i16 for the AVX2 and AVX-512 BW kernels; the per-column arrays
/// hold `16 · ceil(n / 16)` values.
#[derive(Clone, Copy)]
pub(crate) struct PackedParts {
    pub(crate) lines: *const i8,
    pub(crate) groups: usize,
    pub(crate) col_sums: *const i32,
    pub(crate) col_offsets: *const i32,
    pub(crate) zero_points: *const i32,
}
