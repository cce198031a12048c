//! The C ABI, from C: compiles `tests/c/abi.c` against `include/lowp.h` and the built
//! static library with the system C compiler, runs it, and checks everything it prints
//! against the Rust side: struct sizes and field offsets, enum values, results of every
//! embedding-bag configuration, quantizer, dequantizer and i64 GEMM form (bit for bit,
//! against the reference model), and the statuses and messages of bad-input calls. Also
//! compiles `tests/c/header.cpp` as C++17 with warnings as errors.
//!
//! The static library is `target/[<triple>/]<profile>/liblowp.a`, found from this test
//! binary's path; if it is missing or older than the sources, the test builds it with the
//! same cargo, profile and target (cargo releases its build lock while tests run).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output as ProcessOutput};
use std::time::SystemTime;

use half::{bf16, f16};
use lowp::embedding::plan::{EmbeddingBag, EmbeddingBagSpec, IndexType, OutputType, WeightsKind};
use lowp::ffi::{
    LowpBags, LowpEmbeddingBagSpec, LowpInteractionOptions, LowpOutputStage, LowpStatus,
    LowpVectors,
};
use lowp::{Bags, Format, IndexSlice, Isa, Output, Pooling, QuantInput, Table, Weights, reference};

const ROWS: usize = 10;
const DIM: usize = 13;
const NUM_BAGS: usize = 4;
const OUT_STRIDE: usize = DIM + 3;
const OUT_LEN: usize = NUM_BAGS * OUT_STRIDE;
const INDICES: [i64; 9] = [7, 0, 9, 3, 3, 1, 8, 2, 5];
const OFFSETS: [i64; NUM_BAGS + 1] = [0, 3, 3, 5, 9];
const LENGTHS: [i64; NUM_BAGS] = [3, 0, 2, 4];
const GEMM: (usize, usize, usize) = (3, 5, 4);

/// The C program's generator (a 32-bit LCG reseeded per array).
struct Rng(u32);

impl Rng {
    fn u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(1664525).wrapping_add(1013904223);
        self.0
    }
    fn f32(&mut self) -> f32 {
        ((self.u32() >> 8) as i32 - (1 << 23)) as f32 / (1 << 20) as f32
    }
    fn f16(&mut self) -> u16 {
        let r = self.u32();
        (((r >> 16) & 0x83ff) | ((10 + r % 10) << 10)) as u16
    }
    fn bf16(&mut self) -> u16 {
        let r = self.u32();
        (((r >> 16) & 0x807f) | ((120 + r % 10) << 7)) as u16
    }
    fn i64(&mut self) -> i64 {
        let hi = u64::from(self.u32());
        ((hi << 32) | u64::from(self.u32())) as i64
    }
}

fn seeded<T>(seed: u32, n: usize, f: impl Fn(&mut Rng) -> T) -> Vec<T> {
    let mut rng = Rng(seed);
    (0..n).map(|_| f(&mut rng)).collect()
}

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn newest_source(dir: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    for entry in std::fs::read_dir(dir).expect("read src/").flatten() {
        let path = entry.path();
        let time = if path.is_dir() {
            newest_source(&path)
        } else {
            entry.metadata().and_then(|m| m.modified()).expect("mtime")
        };
        newest = newest.max(time);
    }
    newest
}

/// `liblowp.a` of this test's target and profile, built if missing or stale.
fn static_library() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target[/<triple>]/<profile>/deps/c_abi-<hash>
    let profile_dir = exe.parent().and_then(Path::parent).expect("profile dir");
    let profile = profile_dir
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let above = profile_dir.parent().expect("target dir");
    // With `--target`, the profile directory sits in a directory named for the triple,
    // which starts with this binary's architecture (both levels hold a CACHEDIR.TAG).
    let above_name = above.file_name().unwrap().to_str().unwrap();
    let cross = above_name.starts_with(&format!("{}-", std::env::consts::ARCH));
    let (target_dir, triple) = if cross {
        let target_dir = above.parent().expect("target dir").to_path_buf();
        (target_dir, Some(above_name.to_owned()))
    } else {
        (above.to_path_buf(), None)
    };
    let lib = profile_dir.join("liblowp.a");
    let sources = newest_source(&manifest().join("src")).max(
        std::fs::metadata(manifest().join("Cargo.toml"))
            .unwrap()
            .modified()
            .unwrap(),
    );
    let fresh = std::fs::metadata(&lib)
        .and_then(|m| m.modified())
        .is_ok_and(|built| built >= sources);
    if !fresh {
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .current_dir(manifest())
            .args(["build", "--lib", "--target-dir"])
            .arg(&target_dir);
        match profile.as_str() {
            "debug" => {}
            "release" => {
                cargo.arg("--release");
            }
            other => {
                cargo.args(["--profile", other]);
            }
        }
        if let Some(triple) = &triple {
            cargo.args(["--target", triple]);
        }
        let status = cargo.status().expect("run cargo build --lib");
        assert!(status.success(), "cargo build --lib failed: {status}");
    }
    assert!(lib.exists(), "{} was not built", lib.display());
    lib
}

fn on_path(program: &str) -> bool {
    // Under qemu user mode a missing program can look spawned and exit 127: ask for success.
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The C and C++ compilers for this test's target, and how to run what they build, or why
/// there are none.
struct Toolchain {
    cc: String,
    cxx: Option<String>,
    runner: Vec<String>,
}

fn toolchain() -> Result<Toolchain, String> {
    if cfg!(target_arch = "x86_64") {
        if !on_path("cc") {
            return Err("no `cc` on PATH".into());
        }
        return Ok(Toolchain {
            cc: "cc".into(),
            cxx: on_path("c++").then(|| "c++".into()),
            runner: Vec::new(),
        });
    }
    if cfg!(target_arch = "aarch64") {
        let cc = ["aarch64-linux-gnu-gcc", "cc"]
            .into_iter()
            .find(|cc| on_path(cc))
            .ok_or("neither aarch64-linux-gnu-gcc nor cc is on PATH")?;
        let cxx = ["aarch64-linux-gnu-g++", "c++"]
            .into_iter()
            .find(|cxx| on_path(cxx) && cc.starts_with("aarch64") == cxx.starts_with("aarch64"))
            .map(String::from);
        // Under qemu user mode the C program is an Arm binary the host cannot exec itself.
        let runner = if cc.starts_with("aarch64-linux-gnu") && on_path("qemu-aarch64") {
            ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"]
                .map(String::from)
                .to_vec()
        } else {
            Vec::new()
        };
        return Ok(Toolchain {
            cc: cc.into(),
            cxx,
            runner,
        });
    }
    Err(format!(
        "no known C toolchain for {}",
        std::env::consts::ARCH
    ))
}

fn run(command: &mut Command, what: &str) -> ProcessOutput {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn build_and_run(tools: &Toolchain, compiler: &str, source: &str, flags: &[&str]) -> String {
    let lib = static_library();
    let stem = Path::new(source).file_stem().unwrap().to_str().unwrap();
    // One directory per program: the tests run in parallel.
    let dir = std::env::temp_dir().join(format!("lowp-c-abi-{}-{stem}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join(stem);
    let mut compile = Command::new(compiler);
    compile
        .args(flags)
        .arg("-I")
        .arg(manifest().join("include"))
        .arg(manifest().join("tests/c").join(source))
        .arg(&lib)
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe);
    run(&mut compile, &format!("{compiler} {source}"));
    let mut program = match tools.runner.split_first() {
        Some((runner, args)) => {
            let mut c = Command::new(runner);
            c.args(args).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    let output = run(&mut program, source);
    std::fs::remove_dir_all(&dir).ok();
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Functions the header declares.
fn declared_functions() -> Vec<String> {
    let header = std::fs::read_to_string(manifest().join("include/lowp.h")).unwrap();
    let mut names = Vec::new();
    for line in header.lines() {
        for prefix in ["lowp_status lowp_", "const char *lowp_"] {
            if let Some(rest) = line.strip_prefix(prefix) {
                let name = rest.split('(').next().unwrap();
                names.push(format!("lowp_{name}"));
            }
        }
    }
    names
}

#[test]
fn c_program_matches_rust() {
    let tools = match toolchain() {
        Ok(tools) => tools,
        Err(why) => {
            println!("c_abi: the C test does not run on this target: {why}");
            return;
        }
    };
    let source = std::fs::read_to_string(manifest().join("tests/c/abi.c")).unwrap();
    let functions = declared_functions();
    assert!(functions.len() >= 15, "header parse found {functions:?}");
    for name in &functions {
        assert!(
            source.contains(&format!("{name}(")),
            "tests/c/abi.c does not call {name}"
        );
    }
    let stdout = build_and_run(
        &tools,
        &tools.cc,
        "abi.c",
        &[
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-O1",
        ],
    );
    check_output(&stdout);
}

#[test]
fn header_compiles_as_cpp() {
    let tools = match toolchain() {
        Ok(tools) => tools,
        Err(why) => {
            println!("c_abi: the C++ test does not run on this target: {why}");
            return;
        }
    };
    let Some(cxx) = &tools.cxx else {
        println!("c_abi: the C++ test does not run on this target: no C++ compiler on PATH");
        return;
    };
    let stdout = build_and_run(
        &tools,
        cxx,
        "header.cpp",
        &["-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic"],
    );
    assert_eq!(
        stdout.trim(),
        format!("lowp {} scalar", env!("CARGO_PKG_VERSION"))
    );
}

fn hex_words(line: &str) -> Vec<u64> {
    let (_, words) = line.split_once(" : ").expect("a results line");
    words
        .split_whitespace()
        .map(|w| u64::from_str_radix(w, 16).expect("hex"))
        .collect()
}

fn keys(line: &str) -> Vec<i64> {
    let (head, _) = line.split_once(" : ").expect("a results line");
    head.split_whitespace()
        .skip(1)
        .filter_map(|w| w.parse().ok())
        .collect()
}

fn isa_code(isa: Isa) -> i64 {
    ["scalar", "avx2", "avx512", "avx512vnni", "neon", "neondot"]
        .iter()
        .position(|&n| n == isa.name())
        .expect("a level the C ABI names") as i64
}

/// Words of an output buffer after `fill`, which starts from the sentinel 0xa5 bytes.
fn output_words(ty: OutputType, len: usize, fill: impl FnOnce(Output<'_>)) -> Vec<u64> {
    match ty {
        OutputType::F32 => {
            let mut out = vec![f32::from_bits(0xa5a5_a5a5); len];
            fill(Output::F32(&mut out));
            out.iter().map(|v| u64::from(v.to_bits())).collect()
        }
        OutputType::F16 => {
            let mut out = vec![f16::from_bits(0xa5a5); len];
            fill(Output::F16(&mut out));
            out.iter().map(|v| u64::from(v.to_bits())).collect()
        }
        OutputType::Bf16 => {
            let mut out = vec![bf16::from_bits(0xa5a5); len];
            fill(Output::Bf16(&mut out));
            out.iter().map(|v| u64::from(v.to_bits())).collect()
        }
    }
}

const OUTPUT_TYPES: [OutputType; 3] = [OutputType::F32, OutputType::F16, OutputType::Bf16];

fn check_layouts(lines: &[&str]) {
    use std::mem::{offset_of, size_of};
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    let mut put = |key: &str, value: usize| {
        expected.insert(key.to_string(), value);
    };
    put(
        "layout lowp_embedding_bag_spec size",
        size_of::<LowpEmbeddingBagSpec>(),
    );
    put("layout lowp_bags size", size_of::<LowpBags>());
    put("layout lowp_status size", size_of::<LowpStatus>());
    macro_rules! offsets {
        ($c:literal, $t:ty, $($f:ident),*) => {
            $(put(concat!("offset ", $c, " ", stringify!($f)), offset_of!($t, $f));)*
        };
    }
    offsets!(
        "lowp_embedding_bag_spec",
        LowpEmbeddingBagSpec,
        dim,
        prefetch_distance,
        format,
        index_type,
        weights,
        pooling,
        output,
        prefetch_hint,
        isa
    );
    offsets!(
        "lowp_bags",
        LowpBags,
        indices,
        num_indices,
        bounds,
        num_bounds,
        weights,
        num_weights,
        bounds_kind,
        bounds_type
    );
    put("layout lowp_vectors size", size_of::<LowpVectors>());
    put("offset lowp_vectors data", offset_of!(LowpVectors, data));
    put("offset lowp_vectors len", offset_of!(LowpVectors, len));
    put("offset lowp_vectors type", offset_of!(LowpVectors, r#type));
    put(
        "layout lowp_interaction_options size",
        size_of::<LowpInteractionOptions>(),
    );
    offsets!(
        "lowp_interaction_options",
        LowpInteractionOptions,
        batch,
        features,
        dim,
        pad_to,
        out_stride,
        diagonal,
        isa
    );
    put(
        "layout lowp_output_stage size",
        size_of::<LowpOutputStage>(),
    );
    offsets!(
        "lowp_output_stage",
        LowpOutputStage,
        scales,
        num_scales,
        bias_i32,
        bias_f32,
        act_times_w_scale,
        num_act_times_w_scale,
        kind,
        bias_kind,
        zero_point,
        relu,
        a_scale
    );
    let mut seen = BTreeSet::new();
    for line in lines
        .iter()
        .filter(|l| l.starts_with("layout ") || l.starts_with("offset "))
    {
        let (key, value) = line.rsplit_once(' ').unwrap();
        let want = expected
            .get(key)
            .unwrap_or_else(|| panic!("C printed {key:?}, which Rust does not know"));
        assert_eq!(value.parse::<usize>().unwrap(), *want, "{key}: C vs Rust");
        seen.insert(key.to_string());
    }
    let missing: Vec<_> = expected.keys().filter(|k| !seen.contains(*k)).collect();
    assert!(missing.is_empty(), "C did not print {missing:?}");
}

fn check_enums(lines: &[&str]) {
    use LowpStatus as S;
    let statuses = [
        ("LOWP_OK", S::Ok),
        ("LOWP_ERR_NULL_POINTER", S::NullPointer),
        ("LOWP_ERR_MISALIGNED", S::Misaligned),
        ("LOWP_ERR_SIZE_OVERFLOW", S::SizeOverflow),
        ("LOWP_ERR_BAD_PARAMETER", S::BadParameter),
        ("LOWP_ERR_INDEX_OUT_OF_RANGE", S::IndexOutOfRange),
        ("LOWP_ERR_BAD_BAGS", S::BadBags),
        ("LOWP_ERR_WEIGHT_COUNT", S::WeightCount),
        ("LOWP_ERR_INPUT_TOO_SMALL", S::InputTooSmall),
        ("LOWP_ERR_OUTPUT_TOO_SMALL", S::OutputTooSmall),
        ("LOWP_ERR_TABLE_SIZE", S::TableSize),
        ("LOWP_ERR_UNSUPPORTED_ISA", S::UnsupportedIsa),
        ("LOWP_ERR_UNREPRESENTABLE_ROW", S::UnrepresentableRow),
        ("LOWP_ERR_ALIASING", S::Aliasing),
        ("LOWP_ERR_PANIC", S::Panic),
    ];
    let mut expected: BTreeMap<&str, i64> = statuses.iter().map(|&(n, s)| (n, s as i64)).collect();
    // The other enums' values are how this test decodes the C program's keys below
    // (Format::ALL order, IndexType, …); they are pinned here so the header cannot drift.
    for (names, first) in [
        (&["LOWP_ISA_AUTO"][..], -1),
        (
            &[
                "LOWP_FORMAT_F32",
                "LOWP_FORMAT_F16",
                "LOWP_FORMAT_BF16",
                "LOWP_FORMAT_Q8",
                "LOWP_FORMAT_Q4",
                "LOWP_FORMAT_Q2",
            ][..],
            0,
        ),
        (
            &["LOWP_FLOAT_F32", "LOWP_FLOAT_F16", "LOWP_FLOAT_BF16"][..],
            0,
        ),
        (&["LOWP_INDEX_I32", "LOWP_INDEX_I64"][..], 0),
        (
            &[
                "LOWP_WEIGHTS_NONE",
                "LOWP_WEIGHTS_PER_INDEX",
                "LOWP_WEIGHTS_POSITIONAL",
            ][..],
            0,
        ),
        (&["LOWP_POOLING_SUM", "LOWP_POOLING_MEAN"][..], 0),
        (
            &[
                "LOWP_PREFETCH_L1",
                "LOWP_PREFETCH_L2",
                "LOWP_PREFETCH_L3",
                "LOWP_PREFETCH_NON_TEMPORAL",
            ][..],
            0,
        ),
        (
            &[
                "LOWP_BOUNDS_OFFSETS",
                "LOWP_BOUNDS_OFFSETS_WITHOUT_LAST",
                "LOWP_BOUNDS_LENGTHS",
            ][..],
            0,
        ),
        (&["LOWP_CLIPPING_MIN_MAX", "LOWP_CLIPPING_GREEDY"][..], 0),
        (
            &["LOWP_EMBEDDINGS_BLOCK", "LOWP_EMBEDDINGS_SEPARATE"][..],
            0,
        ),
        (&["LOWP_WEIGHTS_K_BY_N", "LOWP_WEIGHTS_N_BY_K"][..], 0),
        (
            &[
                "LOWP_STAGE_RAW_I32",
                "LOWP_STAGE_REQUANTIZE_U8",
                "LOWP_STAGE_REQUANTIZE_I8",
                "LOWP_STAGE_DEQUANTIZE",
            ][..],
            0,
        ),
        (&["LOWP_BIAS_NONE", "LOWP_BIAS_I32", "LOWP_BIAS_F32"][..], 0),
        (&["LOWP_ROW_MAJOR", "LOWP_COL_MAJOR"][..], 101),
        (&["LOWP_NO_TRANS", "LOWP_TRANS"][..], 111),
    ] {
        for (i, name) in names.iter().enumerate() {
            expected.insert(name, first + i as i64);
        }
    }
    assert_eq!(
        Format::ALL.len(),
        6,
        "a new format needs a LOWP_FORMAT_ value"
    );
    let mut seen = 0;
    for line in lines.iter().filter(|l| l.starts_with("enum ")) {
        let mut words = line.split_whitespace().skip(1);
        let (name, value) = (words.next().unwrap(), words.next().unwrap());
        assert_eq!(
            Some(&value.parse::<i64>().unwrap()),
            expected.get(name),
            "{name}"
        );
        seen += 1;
    }
    assert_eq!(seen, expected.len(), "every enum value printed once");
}

fn check_isa(lines: &[&str]) {
    let find = |prefix: &str| -> Vec<&str> {
        lines
            .iter()
            .filter_map(|l| l.strip_prefix(prefix))
            .collect()
    };
    assert_eq!(find("version "), [env!("CARGO_PKG_VERSION")]);
    let names = find("isa name ");
    assert_eq!(names.len(), 6);
    let mut mask = 0u32;
    for (code, line) in names.iter().enumerate() {
        let (c, name) = line.split_once(' ').unwrap();
        assert_eq!(c.parse::<usize>().unwrap(), code);
        let isa = Isa::from_name(name).unwrap_or_else(|| panic!("unknown name {name}"));
        assert_eq!(isa_code(isa), code as i64);
        if isa.is_available() {
            mask |= 1 << code;
        }
    }
    assert_eq!(
        find("isa available "),
        [format!("{mask} detected {}", isa_code(Isa::detected())).as_str()]
    );
    match Isa::best() {
        Ok(best) => assert_eq!(find("isa chosen "), [isa_code(best).to_string().as_str()]),
        Err(e) => {
            let reported = find("error isa_chosen ");
            assert_eq!(reported.len(), 1);
            assert!(reported[0].contains(&e.to_string()), "{reported:?} vs {e}");
        }
    }
}

fn slice<'a>(ty: i64, wide: &'a [i64], narrow: &'a [i32]) -> IndexSlice<'a> {
    if ty == 0 {
        IndexSlice::I32(narrow)
    } else {
        IndexSlice::I64(wide)
    }
}

/// Checks every results line; returns how many lines of each kind there were.
fn check_results(lines: &[&str]) -> BTreeMap<String, usize> {
    let values = seeded(1, ROWS * DIM, Rng::f32);
    let f16s: Vec<f16> = seeded(2, ROWS * DIM, Rng::f16)
        .into_iter()
        .map(f16::from_bits)
        .collect();
    let bf16s = seeded(3, ROWS * DIM, Rng::bf16);
    let weights = seeded(4, INDICES.len(), Rng::f32);
    let mut tables: Vec<Vec<u8>> = Vec::new();
    for format in Format::ALL {
        let bytes = match format {
            Format::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Format::F16 => f16s.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Format::Bf16 => bf16s.iter().flat_map(|v| v.to_le_bytes()).collect(),
            _ => {
                let mut t = vec![0u8; format.table_bytes(ROWS, DIM).unwrap()];
                reference::quantize(format, QuantInput::F32(&values), ROWS, DIM, &mut t).unwrap();
                t
            }
        };
        tables.push(bytes);
    }
    let indices32: Vec<i32> = INDICES.iter().map(|&i| i as i32).collect();
    let offsets32: Vec<i32> = OFFSETS.iter().map(|&i| i as i32).collect();
    let lengths32: Vec<i32> = LENGTHS.iter().map(|&i| i as i32).collect();

    let mut counts = BTreeMap::new();
    for line in lines.iter().filter(|l| l.contains(" : ")) {
        let kind = line.split_whitespace().next().unwrap();
        *counts.entry(kind.to_string()).or_insert(0) += 1;
        let k = keys(line);
        let got = hex_words(line);
        let want: Vec<u64> = match kind {
            "quantize" => {
                let format = Format::ALL[k[0] as usize];
                let input = if line.contains(" f16 ") {
                    QuantInput::F16(&f16s)
                } else {
                    QuantInput::F32(&values)
                };
                let mut t = vec![0u8; format.table_bytes(ROWS, DIM).unwrap()];
                reference::quantize(format, input, ROWS, DIM, &mut t).unwrap();
                t.into_iter().map(u64::from).collect()
            }
            "quantize_rows" => {
                let format = Format::ALL[k[0] as usize];
                let mut t = vec![0u8; format.table_bytes(ROWS, DIM).unwrap()];
                let input = QuantInput::F32(&values);
                if k[1] == 1 {
                    reference::quantize_greedy(format, input, ROWS, DIM, &mut t).unwrap();
                } else {
                    reference::quantize(format, input, ROWS, DIM, &mut t).unwrap();
                }
                t.into_iter().map(u64::from).collect()
            }
            "dequantize" => {
                let format = Format::ALL[k[0] as usize];
                let table = Table::new(format, ROWS, DIM, &tables[k[0] as usize]).unwrap();
                output_words(OUTPUT_TYPES[k[1] as usize], ROWS * DIM, |mut out| {
                    reference::dequantize(&table, &mut out).unwrap()
                })
            }
            "bag" => {
                let format = Format::ALL[k[0] as usize];
                let index = [IndexType::I32, IndexType::I64][k[1] as usize];
                let kind_w = [
                    WeightsKind::None,
                    WeightsKind::PerIndex,
                    WeightsKind::Positional,
                ][k[2] as usize];
                let pooling = [Pooling::Sum, Pooling::Mean][k[3] as usize];
                let output = OUTPUT_TYPES[k[4] as usize];
                let (bounds_type, bounds_kind, isa) = (k[5], k[6], k[7]);
                let indices = slice(k[1], &INDICES, &indices32);
                let bags = match bounds_kind {
                    0 => Bags::from_offsets(indices, slice(bounds_type, &OFFSETS, &offsets32)),
                    1 => Bags::from_offsets_without_last(
                        indices,
                        slice(bounds_type, &OFFSETS[..NUM_BAGS], &offsets32[..NUM_BAGS]),
                    ),
                    _ => Bags::from_lengths(indices, slice(bounds_type, &LENGTHS, &lengths32)),
                }
                .unwrap()
                .with_weights(match kind_w {
                    WeightsKind::None => Weights::None,
                    WeightsKind::PerIndex => Weights::PerIndex(&weights),
                    WeightsKind::Positional => Weights::Positional(&weights[..4]),
                })
                .unwrap();
                let plan = EmbeddingBag::new(EmbeddingBagSpec {
                    index,
                    weights: kind_w,
                    pooling,
                    output,
                    ..EmbeddingBagSpec::new(format, DIM)
                })
                .unwrap();
                assert_eq!(isa, isa_code(plan.isa()), "{line}: the plan's level");
                let table = Table::new(format, ROWS, DIM, &tables[k[0] as usize]).unwrap();
                output_words(output, OUT_LEN, |mut out| {
                    reference::embedding_bag(&table, &bags, pooling, &mut out, OUT_STRIDE).unwrap()
                })
            }
            "gemm_i64" => gemm_i64_expected(&k),
            "interaction" => interaction_expected(&k),
            "gemm_u8i8" => {
                let packed = lowp::PackedB::new(
                    &[0i8],
                    1,
                    1,
                    lowp::WeightLayout::KByN,
                    lowp::PerColumn::Tensor(0),
                    None,
                )
                .unwrap();
                assert_eq!(k[3], isa_code(packed.isa()), "{line}: the packing's level");
                gemm_u8i8_expected(&k)
            }
            other => panic!("unknown results line kind {other}"),
        };
        assert_eq!(got, want, "{}", line.split(" : ").next().unwrap());
    }
    counts
}

fn vectors<'a>(bf: bool, f32s: &'a [f32], bf16s: &'a [bf16]) -> lowp::Vectors<'a> {
    if bf {
        lowp::Vectors::Bf16(bf16s)
    } else {
        lowp::Vectors::F32(f32s)
    }
}

/// What `lowp_interaction` writes in the C program's buffer (3 samples, 4 features,
/// dimension 7, rows padded to 4 and 22 apart), from the reference.
fn interaction_expected(k: &[i64]) -> Vec<u64> {
    let (batch, features, dim, stride) = (3, 4, 7, 22);
    let to_bf16 = |bits: Vec<u16>| -> Vec<bf16> { bits.into_iter().map(bf16::from_bits).collect() };
    let dense32 = seeded(8, batch * dim, Rng::f32);
    let dense16 = to_bf16(seeded(9, batch * dim, Rng::bf16));
    let emb_len = batch * (features - 1) * dim;
    let emb32 = seeded(10, emb_len, Rng::f32);
    let emb16 = to_bf16(seeded(11, emb_len, Rng::bf16));
    let (dense_bf16, emb_bf16) = (k[2] == 2, k[3] == 2);
    // Separate blocks are consecutive batch × dim parts of the same data.
    let part = batch * dim;
    let separate: Vec<lowp::Vectors<'_>> = (0..features - 1)
        .map(|f| {
            let r = f * part..(f + 1) * part;
            vectors(emb_bf16, &emb32[r.clone()], &emb16[r])
        })
        .collect();
    let embeddings = if k[1] == 0 {
        lowp::Embeddings::Block(vectors(emb_bf16, &emb32, &emb16))
    } else {
        lowp::Embeddings::Separate(&separate)
    };
    let options = lowp::InteractionOptions {
        diagonal: k[0] == 1,
        pad_to: 4,
        out_stride: Some(stride),
        ..lowp::InteractionOptions::new(batch, features, dim)
    };
    let dense = vectors(dense_bf16, &dense32, &dense16);
    output_words(OUTPUT_TYPES[k[4] as usize], batch * stride, |mut out| {
        reference::interaction(dense, embeddings, &options, &mut out).unwrap()
    })
}

/// Exact small positive scales, as the C program's `rng_scale`.
fn scale(rng: &mut Rng, shift: u32) -> f32 {
    (rng.u32() % 1000 + 1) as f32 / (1u32 << shift) as f32
}

/// All of `v` per column, or `v[0]` for the whole tensor.
fn scales(per_col: bool, v: &[f32]) -> lowp::PerColumn<'_, f32> {
    if per_col {
        lowp::PerColumn::Column(v)
    } else {
        lowp::PerColumn::Tensor(v[0])
    }
}

/// What `lowp_gemm_u8i8_packed` writes in the C program's buffer, from the reference.
fn gemm_u8i8_expected(key: &[i64]) -> Vec<u64> {
    use lowp::{GemmOutput, OutputStage, PerColumn, QuantType, RequantBias};
    let (m, n, k) = (5, 19, 23);
    let (a_stride, out_stride) = (k + 3, n + 2);
    let a = seeded(12, m * a_stride, |r| (r.u32() >> 24) as u8);
    let b = seeded(13, k * n, |r| (r.u32() >> 24) as u8 as i8);
    let mut rng = Rng(14);
    let (mut zps, mut bias_i32, mut mult, mut bias_f32, mut act, mut b_scale) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..n {
        zps.push((rng.u32() % 11) as i32 - 5);
        bias_i32.push((rng.u32() % 20001) as i32 - 10000);
        mult.push(scale(&mut rng, 18));
        bias_f32.push(rng.f32() * 64.0);
        act.push(scale(&mut rng, 16));
        b_scale.push(scale(&mut rng, 16));
    }
    let per_col = key[1] == 1;
    let cols = |v| scales(per_col, v);
    let problem = lowp::U8I8Problem {
        m,
        n,
        k,
        a: &a,
        a_stride,
        a_zero_point: 3,
        b: &b,
        b_zero_point: if per_col {
            PerColumn::Column(&zps)
        } else {
            PerColumn::Tensor(-2)
        },
    };
    let requantize = |out, bias, zero_point, relu| OutputStage::Requantize {
        out,
        bias,
        multiplier: cols(&mult),
        zero_point,
        relu,
    };
    let stage = match key[2] {
        0 => OutputStage::RawI32,
        1 => requantize(QuantType::U8, RequantBias::None, 7, true),
        2 => requantize(QuantType::I8, RequantBias::I32(&bias_i32), -3, false),
        3 => requantize(
            QuantType::U8,
            RequantBias::F32 {
                bias: &bias_f32,
                act_times_w_scale: cols(&act),
            },
            128,
            false,
        ),
        _ => OutputStage::Dequantize {
            a_scale: 1.0 / 128.0,
            b_scale: cols(&b_scale),
            bias: Some(&bias_f32),
            relu: true,
        },
    };
    let len = m * out_stride;
    let run = |mut out: GemmOutput<'_>| {
        reference::gemm_u8i8(&problem, &stage, &mut out, out_stride).unwrap()
    };
    // Buffers start as the C program's 0xa5 bytes.
    match key[2] {
        0 => {
            let mut out = vec![0xa5a5_a5a5u32 as i32; len];
            run(GemmOutput::I32(&mut out));
            out.iter().map(|&v| u64::from(v as u32)).collect()
        }
        4 => {
            let mut out = vec![f32::from_bits(0xa5a5_a5a5); len];
            run(GemmOutput::F32(&mut out));
            out.iter().map(|v| u64::from(v.to_bits())).collect()
        }
        2 => {
            let mut out = vec![0xa5u8 as i8; len];
            run(GemmOutput::I8(&mut out));
            out.iter().map(|&v| u64::from(v as u8)).collect()
        }
        _ => {
            let mut out = vec![0xa5u8; len];
            run(GemmOutput::U8(&mut out));
            out.into_iter().map(u64::from).collect()
        }
    }
}

/// What `lowp_gemm_i64` leaves in the C program's 64-element C buffer, from the CBLAS
/// definition directly.
fn gemm_i64_expected(k: &[i64]) -> Vec<u64> {
    let (m, n, kk) = GEMM;
    let (row_major, ta, tb, acc) = (k[0] == 101, k[1] == 112, k[2] == 112, k[3] == 1);
    let (lda, ldb, ldc) = (k[4] as usize, k[5] as usize, k[6] as usize);
    let a = seeded(5, 64, Rng::i64);
    let b = seeded(6, 64, Rng::i64);
    let mut c = seeded(7, 64, Rng::i64);
    // Element (r, col) of a matrix stored (possibly transposed) with leading dimension ld.
    let at = |data: &[i64], trans: bool, ld: usize, r: usize, col: usize| {
        let (r, col) = if trans { (col, r) } else { (r, col) };
        if row_major {
            data[r * ld + col]
        } else {
            data[col * ld + r]
        }
    };
    for i in 0..m {
        for j in 0..n {
            let mut sum = 0i64;
            for p in 0..kk {
                sum = sum.wrapping_add(at(&a, ta, lda, i, p).wrapping_mul(at(&b, tb, ldb, p, j)));
            }
            let at_c = if row_major { i * ldc + j } else { j * ldc + i };
            c[at_c] = if acc { c[at_c].wrapping_add(sum) } else { sum };
        }
    }
    c.into_iter().map(|v| v as u64).collect()
}

fn check_errors(lines: &[&str]) {
    use LowpStatus as S;
    let foreign = if cfg!(target_arch = "x86_64") {
        "neon"
    } else {
        "avx2"
    };
    let expected: &[(&str, LowpStatus, &[&str])] = &[
        (
            "index_out_of_range",
            S::IndexOutOfRange,
            &["lowp_embedding_bag_run:", "index 99", "position 1 of bag 2"],
        ),
        (
            "null_indices",
            S::NullPointer,
            &["lowp_embedding_bag_run:", "bags->indices is NULL"],
        ),
        ("null_bags", S::NullPointer, &["bags is NULL"]),
        (
            "misaligned_weights",
            S::Misaligned,
            &["bags->weights", "aligned to 4 bytes"],
        ),
        ("offsets_decreasing", S::BadBags, &["offsets[2] = 2"]),
        (
            "out_too_small",
            S::OutputTooSmall,
            &["61 elements needed, 60 given"],
        ),
        (
            "table_size",
            S::TableSize,
            &["lowp_embedding_bag_run:", "table"],
        ),
        (
            "bad_enum",
            S::BadParameter,
            &[
                "lowp_embedding_bag_create:",
                "spec->pooling",
                "7 is not a lowp_pooling",
            ],
        ),
        ("foreign_isa", S::UnsupportedIsa, &[foreign]),
        ("null_plan_out", S::NullPointer, &["plan is NULL"]),
        (
            "null_mask",
            S::NullPointer,
            &["lowp_isa_available:", "mask is NULL"],
        ),
        (
            "isa_name_auto",
            S::BadParameter,
            &["lowp_isa_name:", "LOWP_ISA_AUTO"],
        ),
        (
            "size_overflow",
            S::SizeOverflow,
            &["lowp_table_bytes:", "overflow"],
        ),
        (
            "quantize_float_format",
            S::BadParameter,
            &["lowp_quantize:", "format", "f16"],
        ),
        ("quantize_out_size", S::TableSize, &["lowp_quantize:"]),
        (
            "u8i8_scales",
            S::BadParameter,
            &[
                "lowp_gemm_u8i8_packed:",
                "multiplier",
                "2 per-column values given for 19",
            ],
        ),
        (
            "u8i8_short_a",
            S::InputTooSmall,
            &["lowp_gemm_u8i8_packed:", "127 elements needed, 40 given"],
        ),
        (
            "packed_b_short",
            S::InputTooSmall,
            &["lowp_packed_b_create:", "B"],
        ),
        (
            "interaction_f16",
            S::BadParameter,
            &["lowp_interaction:", "dense", "not f16"],
        ),
        (
            "interaction_null_embeddings",
            S::NullPointer,
            &["lowp_interaction:", "embeddings is NULL"],
        ),
        (
            "quantize_rows_reversed",
            S::BadParameter,
            &["lowp_quantize_rows:", "5..4"],
        ),
        (
            "dequantize_out_small",
            S::OutputTooSmall,
            &["lowp_dequantize:", "130 elements needed, 8 given"],
        ),
        (
            "gemm_alias",
            S::Aliasing,
            &["lowp_gemm_i64:", "C (bytes", "overlaps A"],
        ),
        ("gemm_null", S::NullPointer, &["A is NULL"]),
        (
            "gemm_misaligned",
            S::Misaligned,
            &["C = ", "aligned to 8 bytes"],
        ),
        (
            "gemm_lda",
            S::BadParameter,
            &["A (lda)", "leading dimension 2 is smaller than 3"],
        ),
        ("before_thread", S::NullPointer, &["lowp_isa_detected:"]),
        ("thread_null", S::NullPointer, &["lowp_isa_available:"]),
        // The main thread's message, unchanged by the other thread's failure.
        ("after_thread", S::Ok, &["lowp_isa_detected:"]),
    ];
    for &(tag, status, needles) in expected {
        let prefix = format!("error {tag} ");
        let found: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix(&prefix))
            .collect();
        assert_eq!(found.len(), 1, "one line for {tag}");
        let (code, message) = found[0].split_once(' ').unwrap_or((found[0], ""));
        assert_eq!(
            code.parse::<i32>().unwrap(),
            status as i32,
            "{tag}: {message}"
        );
        for needle in needles {
            assert!(
                message.contains(needle),
                "{tag}: {message:?} lacks {needle:?}"
            );
        }
    }
    assert!(
        lines.contains(&"bad_enum plan_is_null 1"),
        "*plan is NULL after a failure"
    );
    assert!(
        lines.contains(&"packed_b_short null 1"),
        "*packed is NULL after a failure"
    );
}

fn check_output(stdout: &str) {
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.last(),
        Some(&"done"),
        "the C program stopped early:\n{stdout}"
    );
    assert!(!lines.iter().any(|l| l.starts_with("FAIL")), "{stdout}");
    check_layouts(&lines);
    check_enums(&lines);
    check_isa(&lines);
    for (f, format) in Format::ALL.iter().enumerate() {
        let line = format!("table_bytes {f} {}", format.table_bytes(ROWS, DIM).unwrap());
        assert!(lines.contains(&line.as_str()), "{line}");
    }
    let counts = check_results(&lines);
    let want: BTreeMap<String, usize> = [
        ("bag", 6 * 2 * 3 * 2 * 3 * 2 * 3),
        ("dequantize", 3 * 3),
        ("gemm_i64", 16),
        ("interaction", 2 * 2 * 2 * 2 * 3),
        ("gemm_u8i8", 2 * 2 * 5),
        ("quantize", 3 * 2),
        ("quantize_rows", 3 + 2),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(counts, want);
    check_errors(&lines);
}
