//! The whole detection path of one thread on a generated, realistic audit log: parse, evaluate
//! every built-in rule, aggregate. Throughput in events (elements) per second.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use palisade_detect::alert::AggregationMode;
use palisade_detect::audit::parse::InputFormat;
use palisade_detect::generate::{AuditGenerator, GeneratorConfig};
use palisade_detect::pipeline::{Detector, DetectorConfig};
use std::hint::black_box;
use std::sync::Arc;

fn pipeline(c: &mut Criterion) {
    let rules = Arc::new(palisade_detect::builtin::audit_rules().expect("built-in rules load"));
    const EVENTS: usize = 20_000;
    let mut lines = Vec::new();
    AuditGenerator::new(GeneratorConfig::default()).write_lines(EVENTS, &mut lines);
    let mut batch = Vec::new();
    AuditGenerator::new(GeneratorConfig::default()).write_event_list(100, &mut batch);

    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("json_lines_all_rules", |b| {
        b.iter(|| {
            let mut detector = Detector::new(
                Arc::clone(&rules),
                DetectorConfig {
                    mode: AggregationMode::Windowed,
                    ..DetectorConfig::default()
                },
            );
            let mut alerts = 0usize;
            detector
                .process_reader(&lines[..], InputFormat::Native, &mut |a| {
                    alerts += a.len();
                    a.clear();
                })
                .expect("in-memory reader");
            black_box(alerts)
        })
    });
    group.throughput(Throughput::Elements(100));
    group.bench_function("event_list_batch_of_100", |b| {
        let mut detector = Detector::new(Arc::clone(&rules), DetectorConfig::default());
        let mut out = Vec::new();
        b.iter(|| {
            detector.process_document(black_box(&batch), InputFormat::Auto, &mut out);
            out.clear();
        })
    });
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
