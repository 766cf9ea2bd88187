//! The `hukou` binary.

fn main() {
    std::process::exit(hukou_node::cli::main());
}
