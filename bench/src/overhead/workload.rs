//! The workloads: what a traced machine does while we measure it.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// openat + close of one file in a tight loop (Plumbline folds the repeats in the kernel).
    OpenSame,
    /// openat + close of many files, each once: every open is a new event.
    OpenDistinct,
    /// A real syscall-heavy job: `make -j` compiling a generated C project with the system headers.
    Compile,
    /// Distinct opens paced at `--rate` for `--seconds`: the sustained-load check.
    Sustained,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::OpenSame => "openat loop, one file",
            Workload::OpenDistinct => "openat loop, distinct files",
            Workload::Compile => "compile a C project",
            Workload::Sustained => "sustained paced opens",
        }
    }

    /// What one operation of the workload is, for per-operation figures.
    pub fn op(self) -> &'static str {
        match self {
            Workload::OpenSame | Workload::OpenDistinct | Workload::Sustained => "open+close",
            Workload::Compile => "translation unit",
        }
    }
}

/// The files and project the workloads use, made before any tracer starts.
pub struct Fixtures {
    pub same: PathBuf,
    pub files: Vec<PathBuf>,
    pub project: PathBuf,
    pub units: usize,
    pub jobs: usize,
}

impl Fixtures {
    pub fn make(dir: &Path, files: usize, units: usize) -> anyhow::Result<Self> {
        let same = dir.join("same");
        std::fs::write(&same, b"x")?;
        let many = dir.join("many");
        std::fs::create_dir_all(&many)?;
        let files = (0..files)
            .map(|i| {
                let path = many.join(format!("f{i:07}"));
                File::create(&path).map(|_| path)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let project = dir.join("project");
        write_project(&project, units)?;
        let jobs = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Ok(Self { same, files, project, units, jobs })
    }
}

/// Runs one of the unpaced workloads; returns how many operations it did.
pub fn run(workload: Workload, fixtures: &Fixtures, opens: usize) -> anyhow::Result<u64> {
    match workload {
        Workload::OpenSame => {
            for _ in 0..opens {
                drop(File::open(&fixtures.same)?);
            }
            Ok(opens as u64)
        }
        Workload::OpenDistinct => {
            for path in &fixtures.files {
                drop(File::open(path)?);
            }
            Ok(fixtures.files.len() as u64)
        }
        Workload::Compile => {
            let output = Command::new("make")
                .arg("-B")
                .arg("-s")
                .arg(format!("-j{}", fixtures.jobs))
                .arg("-C")
                .arg(&fixtures.project)
                .output()
                .context("running make")?;
            if !output.status.success() {
                bail!("make failed: {}", String::from_utf8_lossy(&output.stderr));
            }
            Ok(fixtures.units as u64)
        }
        Workload::Sustained => bail!("the sustained workload is paced: use `paced`"),
    }
}

/// Opens distinct files at `rate` per second for `seconds`, cycling through
/// the fixtures (each file is reopened only after more than a second, so no
/// open is a repeat within Plumbline's folding window). Returns the opens done.
pub fn paced(fixtures: &Fixtures, rate: u64, seconds: u64) -> anyhow::Result<u64> {
    let files = &fixtures.files;
    let start = Instant::now();
    let length = Duration::from_secs(seconds);
    let mut done = 0u64;
    while start.elapsed() < length {
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        while done < due {
            drop(File::open(&files[done as usize % files.len()])?);
            done += 1;
        }
        std::thread::sleep(Duration::from_micros(250));
    }
    Ok(done)
}

/// The system headers every unit includes: a compiler's header search is
/// what makes a build syscall-heavy (opens, stats, reads of the same files).
const HEADERS: &[&str] = &[
    "stdio.h",
    "stdlib.h",
    "string.h",
    "unistd.h",
    "fcntl.h",
    "errno.h",
    "math.h",
    "time.h",
    "pthread.h",
    "signal.h",
    "ctype.h",
    "limits.h",
    "stdint.h",
    "inttypes.h",
    "sys/stat.h",
    "sys/types.h",
    "sys/socket.h",
    "netinet/in.h",
    "arpa/inet.h",
    "dirent.h",
    "sys/mman.h",
    "sys/wait.h",
    "locale.h",
    "wchar.h",
];

/// A project of `units` C files, a shared header and a Makefile linking them.
fn write_project(dir: &Path, units: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let includes: String = HEADERS.iter().map(|h| format!("#include <{h}>\n")).collect();
    std::fs::write(
        dir.join("shared.h"),
        format!("#pragma once\n{includes}\nstruct item {{ int key; double value; }};\n"),
    )?;
    let mut objects = Vec::new();
    let mut calls = String::new();
    for unit in 0..units {
        std::fs::write(
            dir.join(format!("unit{unit}.c")),
            format!(
                "#include \"shared.h\"\n\
                 static int compare(const void *a, const void *b) {{\n\
                 \treturn ((const struct item *)a)->key - ((const struct item *)b)->key;\n}}\n\
                 double unit{unit}(int n) {{\n\
                 \tstruct item *items = calloc((size_t)n, sizeof *items);\n\
                 \tdouble total = 0;\n\
                 \tfor (int i = 0; i < n; i++) {{ items[i].key = (i * {}) % n; items[i].value = sqrt((double)i); }}\n\
                 \tqsort(items, (size_t)n, sizeof *items, compare);\n\
                 \tfor (int i = 0; i < n; i++) total += items[i].value * (items[i].key & 1);\n\
                 \tfree(items);\n\treturn total;\n}}\n",
                unit * 7 + 3
            ),
        )?;
        objects.push(format!("unit{unit}.o"));
        calls.push_str(&format!("double unit{unit}(int);\n"));
    }
    let sum: String = (0..units).map(|u| format!("\ttotal += unit{u}(1000);\n")).collect();
    std::fs::write(
        dir.join("main.c"),
        format!("#include \"shared.h\"\n{calls}int main(void) {{\n\tdouble total = 0;\n{sum}\tprintf(\"%f\\n\", total);\n\treturn 0;\n}}\n"),
    )?;
    objects.push("main.o".into());
    std::fs::write(
        dir.join("Makefile"),
        format!(
            "CFLAGS = -O1 -Wall\nOBJS = {}\n\nprogram: $(OBJS)\n\t$(CC) -o $@ $(OBJS) -lm\n\n%.o: %.c shared.h\n\t$(CC) $(CFLAGS) -c -o $@ $<\n",
            objects.join(" ")
        ),
    )?;
    Ok(())
}
