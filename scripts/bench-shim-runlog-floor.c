/* The floor of a design jobctl does not use (docs/benchmarks.md, "Run shim
 * and history"): the same run as scripts/bench-shim-floor.c, with SQLite
 * replaced by an append-only run log that readers would fold into the
 * database later. It appends a start record of a real run's size, spawns the
 * command, fdatasyncs the log while the command runs, waits, appends the end
 * record and fdatasyncs again: two durable writes, placed as the shim places
 * its two commits. No output capture, as in the SQLite floor. It measures
 * what taking SQLite off the hot path could buy at most; nothing folds the
 * log, so it is not a store.
 *
 * Usage: bench-shim-runlog-floor LOG CMD [ARGS...]
 */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (long long)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* One record, written with a single write(2): O_APPEND makes concurrent
 * appenders' records land whole, one after the other. */
static void append(int log, const char *record, int length) {
  if (write(log, record, length) != length) {
    perror("bench-shim-runlog-floor: append");
    exit(125);
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: bench-shim-runlog-floor LOG CMD [ARGS...]\n");
    return 2;
  }
  int log = open(argv[1], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (log < 0) {
    perror("bench-shim-runlog-floor: open");
    return 125;
  }
  char record[512];
  /* About the size of a run's row: ids, job, invocation, host, user, stamps. */
  int length = snprintf(record, sizeof record,
                        "start id=5f0c2a9e41d3b7a8 job=bench invocation=0f4e2c1b9a8d7e6f5a4b3c2d1e0f9a8b"
                        " trigger=timer attempt=1 host=%s user=root uid=0 shim_pid=%d"
                        " boot_id=97a6cba1-d0a8-4dde-917f-b77974b89e99 pid_ns=4026531836"
                        " started_us=%lld status=running\n",
                        "bench-host", getpid(), now_us());
  append(log, record, length);

  pid_t pid;
  if (posix_spawnp(&pid, argv[2], NULL, NULL, argv + 2, environ) != 0) {
    perror("bench-shim-runlog-floor: spawn");
    return 127;
  }
  if (fdatasync(log) != 0) {
    perror("bench-shim-runlog-floor: sync");
    return 125;
  }
  int status = 0;
  waitpid(pid, &status, 0);

  length = snprintf(record, sizeof record,
                    "end id=5f0c2a9e41d3b7a8 pid=%d ended_us=%lld status=%d output_bytes=0\n", pid,
                    now_us(), status);
  append(log, record, length);
  if (fdatasync(log) != 0) {
    perror("bench-shim-runlog-floor: sync");
    return 125;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
