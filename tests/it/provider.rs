//! Execution providers on a machine without a GPU: explicit CUDA fails clearly, auto
//! falls back to the CPU.

use crate::common::{context, error_of, fixture_models, output_row, run};

const QUERY: &str = "SELECT embed('mlp_packed', 39, 77516, 13, 2174, 0, 40) AS e";

fn gpu_visible() -> bool {
    std::path::Path::new("/dev/nvidiactl").exists()
}

#[tokio::test]
async fn explicit_cuda_without_a_gpu_is_an_error_with_the_reason() {
    if gpu_visible() {
        eprintln!("skipped: this machine has a GPU; scripts/gpu_check.sh covers CUDA");
        return;
    }
    let ctx = context(&fixture_models());
    run(&ctx, "SET tabssl.provider = 'cuda'").await;
    let err = error_of(&ctx, QUERY).await;
    assert!(
        err.contains("execution provider \"cuda (device 0)\" is not available"),
        "{err}"
    );
    assert!(err.contains("CUDA execution provider"), "{err}");
}

#[tokio::test]
async fn auto_falls_back_to_cpu_with_the_same_numbers() {
    let ctx = context(&fixture_models());
    let cpu = run(&ctx, QUERY).await;
    run(&ctx, "SET tabssl.provider = 'auto'").await;
    let auto = run(&ctx, QUERY).await;
    assert_eq!(
        output_row(cpu[0].column(0).as_ref(), 0),
        output_row(auto[0].column(0).as_ref(), 0)
    );
    if !gpu_visible() {
        let listing = run(&ctx, "SELECT provider FROM tabssl_models() WHERE name = 'mlp_packed'").await;
        let provider = arrow::array::AsArray::as_string::<i32>(listing[0].column(0))
            .value(0)
            .to_string();
        assert_eq!(provider, "cpu");
    }
}
