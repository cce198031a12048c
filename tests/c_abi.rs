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

#[path = "c_abi/checks.rs"]
mod checks;
#[path = "c_abi/expected.rs"]
mod expected;

use checks::{check_enums, check_errors, check_isa, check_layouts};
use expected::{DIM, ROWS, check_results};

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

/// Functions `src/ffi.rs` and `src/ffi/*.rs` export.
fn exported_functions() -> BTreeSet<String> {
    let mut files = vec![manifest().join("src/ffi.rs")];
    for entry in std::fs::read_dir(manifest().join("src/ffi"))
        .unwrap()
        .flatten()
    {
        files.push(entry.path());
    }
    let mut names = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for piece in text.split("extern \"C\" fn ").skip(1) {
            names.insert(piece.split('(').next().unwrap().trim().to_string());
        }
    }
    names
}

/// The header declares exactly what the Rust side exports (a function missing from the
/// Rust side would also fail to link below).
#[test]
fn header_declares_every_export() {
    let declared: BTreeSet<String> = declared_functions().into_iter().collect();
    assert!(declared.len() >= 15, "header parse found {declared:?}");
    assert_eq!(declared, exported_functions());
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
        println!(
            "c_abi: the C++ test does not run on this target: no C++ compiler matching {} on PATH",
            tools.cc
        );
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
        ("gemm_u8i8_block", 2 * 2 * 5),
        ("quantize", 3 * 2),
        ("quantize_rows", 3 + 2),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(counts, want);
    check_errors(&lines);
}
