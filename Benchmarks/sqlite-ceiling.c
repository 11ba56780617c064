// Hubcast — how fast SQLite alone rewrites random records of a large table (the durable store's
// ceiling; BENCHMARKS.md, rules engine, fifth round). Built and run by Benchmarks/bench-sqlite-ceiling.
//
// usage: sqlite-ceiling FILE MODE [option=value ...]
//   MODE inplace     read a record by profile id, write it back changed (what the store does)
//        background  the same, checkpoints on a second connection in a thread of their own; the
//                    writer waits when the WAL passes `limit` pages
//        append      each rewrite appends the record to an append-only table; an in-memory
//                    key -> row map finds the latest (no compaction)
//        blob        read the record by key and write it back in place through one incremental
//                    I/O handle (sqlite3_blob_reopen/read/write: one B-tree search, same size)
//        blobwrite   read as `inplace`, write back through an incremental I/O handle
//   options: rows (1000000), rewrites (600000), batch (512), record (690 bytes), page (4096),
//            checkpoint (10000 pages), bykey (0: look up by profile id), limit (20000 pages),
//            cache (64 MiB)

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long option(int argc, char **argv, const char *name, long fallback) {
    size_t length = strlen(name);
    for (int i = 3; i < argc; i++) {
        if (strncmp(argv[i], name, length) == 0 && argv[i][length] == '=') return atol(argv[i] + length + 1);
    }
    return fallback;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static unsigned long long state = 42;
static unsigned long long next_random(void) {  // SplitMix64
    unsigned long long z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void run(sqlite3 *db, const char *sql) {
    char *error = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &error) != SQLITE_OK) {
        fprintf(stderr, "%s: %s\n", sql, error);
        exit(1);
    }
}

static sqlite3_stmt *prepare(sqlite3 *db, const char *sql) {
    sqlite3_stmt *statement;
    if (sqlite3_prepare_v2(db, sql, -1, &statement, NULL) != SQLITE_OK) {
        fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
        exit(1);
    }
    return statement;
}

// Background checkpoints: the thread checkpoints whenever there is something to copy and counts
// the checkpoints that reached the end of the WAL; the writer waits for one when the WAL is too long.
static const char *path;
static volatile int finished = 0;
static long limit_pages;
static long complete = 0, waits = 0;
static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t completed = PTHREAD_COND_INITIALIZER;

static void *checkpointer(void *unused) {
    (void)unused;
    sqlite3 *db;
    sqlite3_open(path, &db);
    run(db, "SELECT count(*) FROM sqlite_master");  // opens the WAL index
    while (!finished) {
        int log = 0, copied = 0;
        sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
        if (log > 0 && log == copied) {
            pthread_mutex_lock(&mutex);
            complete++;
            pthread_cond_broadcast(&completed);
            pthread_mutex_unlock(&mutex);
        }
        if (log - copied < 2000) usleep(1000);
    }
    sqlite3_close(db);
    return NULL;
}

static int wal_hook(void *unused, sqlite3 *db, const char *name, int pages) {
    (void)unused, (void)db, (void)name;
    if (pages > limit_pages) {
        waits++;
        pthread_mutex_lock(&mutex);
        long seen = complete;
        while (complete == seen) pthread_cond_wait(&completed, &mutex);
        pthread_mutex_unlock(&mutex);
    }
    return SQLITE_OK;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s FILE inplace|background|append|blob [option=value ...]\n", argv[0]);
        return 2;
    }
    path = argv[1];
    const char *mode = argv[2];
    int append = strcmp(mode, "append") == 0, background = strcmp(mode, "background") == 0;
    int blobs = strcmp(mode, "blob") == 0, blob_writes = strcmp(mode, "blobwrite") == 0;
    if (!append && !background && !blobs && !blob_writes && strcmp(mode, "inplace") != 0) {
        fprintf(stderr, "unknown mode '%s'\n", mode);
        return 2;
    }
    long rows = option(argc, argv, "rows", 1000000), rewrites = option(argc, argv, "rewrites", 600000);
    long batch = option(argc, argv, "batch", 512), size = option(argc, argv, "record", 690);
    long page = option(argc, argv, "page", 4096), checkpoint = option(argc, argv, "checkpoint", 10000);
    long bykey = option(argc, argv, "bykey", 0);
    limit_pages = option(argc, argv, "limit", 20000);

    char wal[4096];
    snprintf(wal, sizeof wal, "%s-wal", path);
    remove(path);
    remove(wal);
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) {
        fprintf(stderr, "cannot open %s\n", path);
        return 1;
    }
    char sql[256];
    snprintf(sql, sizeof sql, "PRAGMA page_size = %ld", page);
    run(db, sql);
    run(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL");
    snprintf(sql, sizeof sql, "PRAGMA cache_size = -%ld", option(argc, argv, "cache", 64) * 1024);
    run(db, sql);
    snprintf(sql, sizeof sql, "PRAGMA wal_autocheckpoint = %ld", checkpoint);
    run(db, sql);
    run(db, append ? "CREATE TABLE log (row INTEGER PRIMARY KEY, key INTEGER NOT NULL, record BLOB NOT NULL);"
                     "CREATE TABLE ids (profile_id TEXT PRIMARY KEY, key INTEGER NOT NULL) WITHOUT ROWID"
                   : "CREATE TABLE profiles (key INTEGER PRIMARY KEY, profile_id TEXT UNIQUE, record BLOB NOT NULL)");

    unsigned char *record = malloc(size);
    for (long i = 0; i < size; i++) record[i] = (unsigned char)next_random();
    long long *latest = append ? malloc(sizeof(long long) * rows) : NULL;  // key -> row, append mode
    long long next_row = 1;
    sqlite3_stmt *insert = prepare(db, append ? "INSERT INTO log VALUES (?, ?, ?)" : "INSERT INTO profiles VALUES (?, ?, ?)");
    sqlite3_stmt *insert_id = append ? prepare(db, "INSERT INTO ids VALUES (?, ?)") : NULL;
    sqlite3_stmt *find = prepare(db, append ? "SELECT key FROM ids WHERE profile_id = ?"
                                 : bykey ? "SELECT key, record FROM profiles WHERE key = ?"
                                         : "SELECT key, record FROM profiles WHERE profile_id = ?");
    sqlite3_stmt *read_row = append ? prepare(db, "SELECT record FROM log WHERE row = ?") : NULL;
    sqlite3_stmt *update = append ? NULL : prepare(db, "UPDATE profiles SET record = ? WHERE key = ?");

    for (long start = 0; start < rows; start += batch) {
        run(db, "BEGIN");
        for (long key = start; key < start + batch && key < rows; key++) {
            char id[32];
            int length = snprintf(id, sizeof id, "p%ld", key);
            if (append) {
                sqlite3_bind_text(insert_id, 1, id, length, SQLITE_STATIC);
                sqlite3_bind_int64(insert_id, 2, key);
                sqlite3_step(insert_id);
                sqlite3_reset(insert_id);
                sqlite3_bind_int64(insert, 1, next_row);
                sqlite3_bind_int64(insert, 2, key);
                latest[key] = next_row++;
            } else {
                sqlite3_bind_int64(insert, 1, key + 1);
                sqlite3_bind_text(insert, 2, id, length, SQLITE_STATIC);
            }
            sqlite3_bind_blob(insert, 3, record, (int)size, SQLITE_STATIC);
            sqlite3_step(insert);
            sqlite3_reset(insert);
        }
        run(db, "COMMIT");
    }
    sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);

    pthread_t thread;
    if (background) {
        run(db, "PRAGMA wal_autocheckpoint = 0");
        sqlite3_wal_hook(db, wal_hook, NULL);
        pthread_create(&thread, NULL, checkpointer, NULL);
    }
    double start_time = now();
    for (long start = 0; start < rewrites; start += batch) {
        run(db, "BEGIN");
        sqlite3_blob *blob = NULL;
        for (long n = start; n < start + batch && n < rewrites; n++) {
            long target = (long)(next_random() % (unsigned long long)rows);
            if (blobs) {
                // The record read and written in place through one incremental-I/O handle (by key).
                int status = blob ? sqlite3_blob_reopen(blob, target + 1)
                                  : sqlite3_blob_open(db, "main", "profiles", "record", target + 1, 1, &blob);
                if (status != SQLITE_OK || sqlite3_blob_read(blob, record, (int)size, 0) != SQLITE_OK) {
                    fprintf(stderr, "blob %ld: %s\n", target + 1, sqlite3_errmsg(db));
                    return 1;
                }
                record[n % size] ^= 1;
                sqlite3_blob_write(blob, record, (int)size, 0);
                continue;
            }
            char id[32];
            int length = snprintf(id, sizeof id, "p%ld", target);
            long long key;
            if (bykey && !append) sqlite3_bind_int64(find, 1, target + 1);
            else sqlite3_bind_text(find, 1, id, length, SQLITE_STATIC);
            if (sqlite3_step(find) != SQLITE_ROW) {
                fprintf(stderr, "row %s is missing\n", id);
                return 1;
            }
            key = sqlite3_column_int64(find, 0);
            if (!append) memcpy(record, sqlite3_column_blob(find, 1), size);
            sqlite3_reset(find);
            if (append) {
                sqlite3_bind_int64(read_row, 1, latest[key]);
                sqlite3_step(read_row);
                memcpy(record, sqlite3_column_blob(read_row, 0), size);
                sqlite3_reset(read_row);
            }
            record[n % size] ^= 1;
            if (append) {
                sqlite3_bind_int64(insert, 1, next_row);
                sqlite3_bind_int64(insert, 2, key);
                sqlite3_bind_blob(insert, 3, record, (int)size, SQLITE_STATIC);
                sqlite3_step(insert);
                sqlite3_reset(insert);
                latest[key] = next_row++;
            } else if (blob_writes) {
                int status = blob ? sqlite3_blob_reopen(blob, key)
                                  : sqlite3_blob_open(db, "main", "profiles", "record", key, 1, &blob);
                if (status != SQLITE_OK || sqlite3_blob_write(blob, record, (int)size, 0) != SQLITE_OK) {
                    fprintf(stderr, "blob %lld: %s\n", key, sqlite3_errmsg(db));
                    return 1;
                }
            } else {
                sqlite3_bind_blob(update, 1, record, (int)size, SQLITE_STATIC);
                sqlite3_bind_int64(update, 2, key);
                sqlite3_step(update);
                sqlite3_reset(update);
            }
        }
        if (blob) sqlite3_blob_close(blob);
        run(db, "COMMIT");
    }
    double elapsed = now() - start_time;
    if (background) {
        finished = 1;
        pthread_join(thread, NULL);
    }
    printf("| %s | %ld | %ld | %ld | %ld | %ld | %ld | %.0f | %.2f |", mode, rows, batch, size, page, checkpoint, bykey,
           rewrites / elapsed, elapsed / rewrites * 1e6);
    if (background) printf(" writer waited on %ld of %ld commits", waits, (rewrites + batch - 1) / batch);
    printf("\n");
    sqlite3_close(db);
    remove(path);
    remove(wal);
    return 0;
}
