/* The floor under `jobctl exec --job J -- CMD` (docs/benchmarks.md, "Run shim
 * and history"): a bare C program that does only what the shim cannot skip.
 * It opens a WAL database in a fresh process the way jobctl-history does
 * (no checkpoint on close), commits a start row without waiting for the disk
 * (synchronous=NORMAL), spawns the command with posix_spawn, fdatasyncs the
 * log while the command runs, waits for it, durably updates the row
 * (synchronous=FULL), and exits: both writes durable before it exits, as in
 * the shim. No argument parsing, no output capture, no run record
 * beyond two integers. Built by scripts/bench-shim, statically, against the
 * SQLite amalgamation that rusqlite bundles, with the same compile options.
 *
 * Usage: bench-shim-floor DB CMD [ARGS...]
 */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sqlite3.h"

extern char **environ;

static void check(int rc, sqlite3 *db, const char *what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    fprintf(stderr, "bench-shim-floor: %s: %s\n", what, db ? sqlite3_errmsg(db) : "?");
    exit(125);
  }
}

static void exec(sqlite3 *db, const char *sql) {
  check(sqlite3_exec(db, sql, NULL, NULL, NULL), db, sql);
}

static long long now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (long long)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: bench-shim-floor DB CMD [ARGS...]\n");
    return 2;
  }
  sqlite3 *db = NULL;
  check(sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL), db,
        "open");
  sqlite3_busy_timeout(db, 5000);
  sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
  exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 64;"
           "CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, started_us INTEGER NOT NULL,"
           " ended_us INTEGER, status INTEGER)");

  sqlite3_stmt *st;
  exec(db, "BEGIN IMMEDIATE");
  check(sqlite3_prepare_v2(db, "INSERT INTO runs (started_us) VALUES (?1)", -1, &st, NULL), db,
        "prepare insert");
  sqlite3_bind_int64(st, 1, now_us());
  check(sqlite3_step(st), db, "insert");
  sqlite3_finalize(st);
  exec(db, "COMMIT");
  sqlite3_int64 id = sqlite3_last_insert_rowid(db);

  pid_t pid;
  if (posix_spawnp(&pid, argv[2], NULL, NULL, argv + 2, environ) != 0) {
    perror("bench-shim-floor: spawn");
    return 127;
  }
  char wal[4096];
  snprintf(wal, sizeof wal, "%s-wal", argv[1]);
  int log = open(wal, O_RDONLY | O_CLOEXEC);
  if (log < 0 || fdatasync(log) != 0) {
    perror("bench-shim-floor: sync the log");
    return 125;
  }
  close(log);
  exec(db, "PRAGMA synchronous = FULL");
  int status = 0;
  waitpid(pid, &status, 0);

  exec(db, "BEGIN IMMEDIATE");
  check(sqlite3_prepare_v2(db, "UPDATE runs SET ended_us = ?1, status = ?2 WHERE id = ?3", -1, &st,
                           NULL),
        db, "prepare update");
  sqlite3_bind_int64(st, 1, now_us());
  sqlite3_bind_int(st, 2, status);
  sqlite3_bind_int64(st, 3, id);
  check(sqlite3_step(st), db, "update");
  sqlite3_finalize(st);
  exec(db, "COMMIT");
  sqlite3_close(db);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
