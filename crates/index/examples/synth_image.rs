//! Write the synthetic Go image of `deferscope_index::synth` to a file (a
//! fuzzing seed): `cargo run -p deferscope-index --example synth_image OUT`.
fn main() {
    let out = std::env::args().nth(1).expect("usage: synth_image OUT");
    std::fs::write(out, deferscope_index::synth::image()).expect("write");
}
