/*  al_store_pg_copy.h: move an audit log from SQLite to PostgreSQL, and prove the copy.

    Copy reads a SQLite log (read-only), checks its chain while reading, and writes every
    event and every side-table row (deliveries, outbox, consumed approvals, journal)
    into an EMPTY PostgreSQL log in one transaction: either all of it is there or none.
    Then it compares. Compare reads both logs and requires the same rows byte for byte
    (the canonical row encoding of each event and its stored hash), the same side-table
    rows, and a target whose chain verifies on its own; the first difference is named.
    Run the copy with the broker stopped (or on a copy of the file).
*/
#ifndef AL_STORE_PG_COPY_H_INCLUDED
#define AL_STORE_PG_COPY_H_INCLUDED

#include "store/al_store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    bool equal;                     // compare: the target holds exactly the source
    uint64_t rows;                  // events copied / compared
    uint8_t head_hash [AL_STORE_HASH_SIZE];
    uint64_t deliveries, outbox, approvals, journal;   // side-table rows
    uint64_t first_bad_sequence;    // compare: the first event that differs (0: none or not an event)
    char reason [512];              // what differs, or what went wrong
} al_store_copy_report_t;

//  Copy the SQLite log at sqlite_path into the PostgreSQL log at dsn (created if the
//  database is empty; refused if it already holds rows), then compare. AL_STORE_OK when
//  the copy was committed and compares equal; AL_STORE_ERR_HEAD_MISMATCH when the
//  source's chain is broken (nothing written) or the committed copy differs; another
//  error when a database failed. report->reason says which.
al_store_status_t al_store_pg_copy_from_sqlite (const char *sqlite_path, const char *dsn,
                                                al_store_copy_report_t *report);

//  Compare the SQLite log with its PostgreSQL copy. AL_STORE_OK when the comparison ran:
//  its outcome is report->equal (and reason / first_bad_sequence when not); else an error.
al_store_status_t al_store_pg_compare_with_sqlite (const char *sqlite_path, const char *dsn,
                                                   al_store_copy_report_t *report);

#ifdef __cplusplus
}
#endif

#endif
