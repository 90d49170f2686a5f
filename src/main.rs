fn main() {
    std::process::exit(astran_creds::cli::main());
}
