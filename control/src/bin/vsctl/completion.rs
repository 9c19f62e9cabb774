//! `vsctl completion SHELL`: the shell completion script, generated from the clap definition.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::args::Cli;

pub fn script(shell: Shell) -> anyhow::Result<String> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "vsctl", &mut buf);
    Ok(String::from_utf8(buf)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_and_zsh_scripts_name_the_nouns() {
        for shell in [Shell::Bash, Shell::Zsh] {
            let text = script(shell).expect("generates");
            assert!(text.contains("vsctl"));
            assert!(text.contains("xconnect"));
            assert!(text.contains("mempools"));
        }
    }
}
