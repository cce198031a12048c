//! DLRM feature interaction: every registry kernel this CPU runs, F = 27, B ∈ {1, 64, 512,
//! 2048}, d ∈ {64, 128}, f32 and bf16 inputs in one block and f32 inputs in F − 1
//! separate buffers, in flops of the triangle (2 · d per dot product) per second; and the
//! unfused way (full F × F product, gather, concatenate) at f32 for comparison.

#[path = "common/interaction.rs"]
mod interaction;
#[path = "common/names.rs"]
mod names;

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lowp::registry::{self, Op};

use interaction::{BATCHES, DIMS, FEATURES, InteractionCase, Layout, Unfused};

fn interaction(c: &mut Criterion) {
    let mut group = c.benchmark_group("interaction");
    for (bf16_input, layout) in [
        (false, Layout::Block),
        (true, Layout::Block),
        (false, Layout::Separate),
    ] {
        for dim in DIMS {
            for batch in BATCHES {
                let case = InteractionCase::with_layout(batch, dim, bf16_input, layout);
                let mut out = vec![0f32; case.out_len()];
                group.throughput(Throughput::Elements(case.flops() as u64));
                let mut shape = format!("{}/b{batch}_f{FEATURES}_dim{dim}", case.format());
                if layout == Layout::Separate {
                    shape += "_separate";
                }
                for entry in registry::entries()
                    .iter()
                    .filter(|e| e.op == Op::Interaction && e.isa.is_available())
                {
                    case.run(entry, &mut out);
                    assert!(
                        case.is_exact(&out),
                        "{} differs from the reference",
                        entry.isa
                    );
                    let id = format!("{}_{}/{shape}", entry.isa, names::spec_name(entry.spec));
                    group.bench_function(id, |b| b.iter(|| case.run(entry, &mut out)));
                }
                if !bf16_input && layout == Layout::Block {
                    let mut scratch = Unfused::default();
                    group.bench_function(format!("unfused/{shape}"), |b| {
                        b.iter(|| case.unfused(&mut scratch, &mut out))
                    });
                }
            }
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(10);
    targets = interaction
}
criterion_main!(benches);
