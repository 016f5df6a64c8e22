/*  al_testpoint_int.h: internal to base/: the one parser and pass counter behind the
    named test hooks (al_crashpoint, al_stallpoint).

    A hook's environment variable lists points as NAME[:N1[:N2]][,NAME...]: a name of 1 to
    63 characters without '/' or blanks, then up to two decimal numbers whose meaning and
    bounds the hook gives (crash points: NTH; stall points: MS then NTH). A second
    variable (VARIABLE_ARM) names a directory the hook may use for its own trigger files.
    Errors name the variable and the entry at fault: "AIRLOCK_X: 'name:0': NTH must be a
    number >= 1". Not a public API: product code calls al_crashpoint / al_stallpoint.
*/
#ifndef AL_TESTPOINT_INT_H_INCLUDED
#define AL_TESTPOINT_INT_H_INCLUDED

#include <stdatomic.h>
#include <stddef.h>

#define AL_TESTPOINT_MAX 16
#define AL_TESTPOINT_NAME_MAX 64
#define AL_TESTPOINT_FIELDS 2

//  One number after a point's name.
typedef struct {
    const char *label;                  // as errors say it: "NTH", "MS"
    unsigned long minimum;
    unsigned long maximum;              // ULONG_MAX: no upper bound ("a number >= MIN")
    unsigned long fallback;             // when the entry leaves it out
    int required;                       // the entry must give it
} al_testpoint_field_t;

//  One armed point.
typedef struct {
    char name [AL_TESTPOINT_NAME_MAX];
    unsigned long value [AL_TESTPOINT_FIELDS];
    atomic_ulong passes;
} al_testpoint_t;

//  A hook's table: its fixed description, then what al_testpoint_load fills in.
typedef struct {
    const char *variable;               // "AIRLOCK_CRASHPOINT"
    const char *arm_variable;           // "AIRLOCK_CRASHPOINT_ARM"
    const char *tag;                    // stderr prefix: "crashpoint"
    const char *unarmed;                // said after a parse error: "no crash point armed"
    al_testpoint_field_t field [AL_TESTPOINT_FIELDS];
    int field_count;
    //  Filled by al_testpoint_load:
    al_testpoint_t point [AL_TESTPOINT_MAX];
    int count;                          // -1: the variable did not parse
    char error [256];
    const char *arm_dir;                // NULL when unset or empty
} al_testpoint_table_t;

//  Read and parse the table's variables (call once, under the hook's pthread_once); a
//  spec that does not parse arms nothing and is reported on stderr once.
void al_testpoint_load (al_testpoint_table_t *table);

//  Parse SPEC into the table; the number of points, or -1 with table->error set.
int al_testpoint_parse (al_testpoint_table_t *table, const char *spec);

//  Count a pass through NAME: the pass number at the next point (from *index on) that
//  bears NAME, with *index set to it; 0 when no further point bears NAME. Start with
//  *index = 0 and call again with *index + 1 (a name may be listed more than once).
unsigned long al_testpoint_pass (al_testpoint_table_t *table, const char *name, int *index);

//  The table's count (see al_crashpoint_configured), with its error copied when -1.
int al_testpoint_configured (const al_testpoint_table_t *table, char *error, size_t error_size);

#endif
