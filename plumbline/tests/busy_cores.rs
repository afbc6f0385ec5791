//! The same exact answers when the machine has no idle time: busy loops on
//! every core while the checks of `host_capture.rs` run, and short-lived
//! files, pipes and unix sockets by the hundred whose inode numbers the
//! kernel hands on at once. Only how long an answer takes may differ.

mod support;

use support::{checks::*, Embedded};

#[test]
fn four_hundred_short_lived_files_each_keep_their_own_bytes_on_busy_cores() {
    let _busy = BusyCores::start();
    let plumbline = Embedded::start("");
    short_lived_files_keep_their_own_bytes(&plumbline, 8, 50, 12_345);
}

#[test]
fn short_lived_pipes_and_unix_sockets_keep_their_own_bytes_on_busy_cores() {
    let _busy = BusyCores::start();
    let plumbline = Embedded::start("");
    short_lived_channels_keep_their_own_bytes(&plumbline, 8, 10, 4_321);
}

#[test]
fn processes_files_and_connections_are_exact_on_busy_cores() {
    let _busy = BusyCores::start();
    let plumbline = Embedded::start("");
    marked_shell(&plumbline);
    file_written_renamed_and_unlinked(&plumbline);
    tcp_conversation(&plumbline);
    opens_right_after_exec_name_the_new_program(&plumbline, 100);
}
