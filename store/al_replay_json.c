/*  al_replay_json.c: replayed deployments as JSON and history lines, and the time format they use.

    Part of the replay; see store/al_replay.c for its rules and store/al_replay_int.h
    for how its files divide the work.
*/
#include "store/al_replay_int.h"

//  ---- JSON and history ---------------------------------------------------------------------

static json_t *
s_time_json (uint64_t time_ms)
{
    if (!time_ms)
        return json_null ();
    char text [48];
    al_store_format_time (time_ms, text, sizeof text);
    return json_string (text);
}

//  Strings of a damaged log may not be UTF-8: jansson refuses them, so say so instead.
static json_t *
s_string_json (const char *text)
{
    json_t *value = json_string (text? text: "");
    return value? value: json_string ("(not UTF-8)");
}

json_t *
al_replay_deployment_json (const al_replay_deployment_t *deployment)
{
    assert (deployment);
    const al_replay_deployment_t *d = deployment;
    char state [160];
    al_replay_state_text (d, state, sizeof state);
    json_t *root = json_object ();
    json_t *approvals = json_array ();
    json_t *timeline = json_array ();
    if (!root || !approvals || !timeline) {
        json_decref (root);
        json_decref (approvals);
        json_decref (timeline);
        return NULL;
    }
    for (size_t i = 0; i < d->approval_count; i++) {
        const al_replay_approval_t *a = &d->approvals [i];
        json_t *item = json_object ();
        json_object_set_new (item, "sequence", json_integer ((json_int_t) a->sequence));
        json_object_set_new (item, "time", s_time_json (a->time_ms));
        json_object_set_new (item, "sender", s_string_json (a->sender));
        json_object_set_new (item, "key_id", s_string_json (a->key_id));
        json_object_set_new (item, "public_key", s_string_json (a->public_key));
        json_object_set_new (item, "signature_valid", json_boolean (a->signature_valid));
        json_object_set_new (item, "decision", json_string (a->decision));
        json_object_set_new (item, "approval_id", s_string_json (a->approval_id));
        json_object_set_new (item, "break_glass", json_boolean (a->break_glass));
        json_object_set_new (item, "in_grant", json_boolean (a->in_grant));
        if (*a->reason)
            json_object_set_new (item, "reason", s_string_json (a->reason));
        json_array_append_new (approvals, item);
    }
    for (size_t i = 0; i < d->entry_count; i++) {
        const al_replay_entry_t *e = &d->entries [i];
        json_t *item = json_object ();
        json_object_set_new (item, "sequence", json_integer ((json_int_t) e->sequence));
        json_object_set_new (item, "time", s_time_json (e->time_ms));
        json_object_set_new (item, "kind", json_string (al_replay_kind_name (e->kind)));
        json_object_set_new (item, "type", s_string_json (e->type));
        json_object_set_new (item, "sender", s_string_json (e->sender));
        json_object_set_new (item, "role", s_string_json (e->role));
        if (*e->step)
            json_object_set_new (item, "step", s_string_json (e->step));
        if (*e->outcome)
            json_object_set_new (item, "outcome", s_string_json (e->outcome));
        json_object_set_new (item, "text", s_string_json (e->text));
        json_array_append_new (timeline, item);
    }
    json_object_set_new (root, "deployment_id", s_string_json (d->id));
    json_object_set_new (root, "environment", s_string_json (d->environment));
    json_object_set_new (root, "service", s_string_json (d->service));
    json_object_set_new (root, "version", s_string_json (d->version));
    json_object_set_new (root, "deployment_type", s_string_json (d->deployment_type));
    json_object_set_new (root, "artifact_uri", s_string_json (d->artifact_uri));
    json_object_set_new (root, "artifact_sha256", s_string_json (d->artifact_sha256));
    json_object_set_new (root, "state", json_string (al_replay_state_name (d->state)));
    json_object_set_new (root, "step", *d->step? s_string_json (d->step): json_null ());
    json_object_set_new (root, "state_text", s_string_json (state));
    json_object_set_new (root, "detail", s_string_json (d->detail));
    json_object_set_new (root, "request", d->requested_ms || *d->requested_by
        ? json_pack ("{s:o, s:o, s:I}", "by", s_string_json (d->requested_by), "time", s_time_json (d->requested_ms),
                     "sequence", (json_int_t) d->request_sequence)
        : json_null ());
    json_object_set_new (root, "approvals", approvals);
    json_object_set_new (root, "grant", d->grant_sequence
        ? json_pack ("{s:I, s:o}", "sequence", (json_int_t) d->grant_sequence, "time", s_time_json (d->grant_ms))
        : json_null ());
    json_object_set_new (root, "receipt", d->receipt_sequence
        ? json_pack ("{s:I, s:o, s:o, s:o, s:o, s:o}", "sequence", (json_int_t) d->receipt_sequence,
                     "outcome", s_string_json (d->receipt_outcome), "rollback_rule", s_string_json (d->rollback_rule),
                     "receipt_sha256", s_string_json (d->receipt_sha256),
                     "previous_version", s_string_json (d->previous_version),
                     "time", s_time_json (d->finished_ms))
        : json_null ());
    json_object_set_new (root, "started", s_time_json (d->started_ms));
    json_object_set_new (root, "finished", s_time_json (d->finished_ms));
    json_object_set_new (root, "duration_ms", d->started_ms && d->finished_ms >= d->started_ms
        ? json_integer ((json_int_t) (d->finished_ms - d->started_ms)): json_null ());
    json_object_set_new (root, "timeline", timeline);
    return root;
}

void
al_replay_history_row (const al_replay_deployment_t *deployment, al_replay_history_t *row)
{
    assert (deployment && row);
    const al_replay_deployment_t *d = deployment;
    memset (row, 0, sizeof *row);
    //  When it ran; else when it was asked for; else (a refused attempt) its first row.
    uint64_t when = d->started_ms? d->started_ms: d->requested_ms? d->requested_ms: d->grant_ms;
    if (!when && d->entry_count)
        when = d->entries [0].time_ms;
    if (when) {
        char text [48];
        al_store_format_time (when, text, sizeof text);
        snprintf (row->date, sizeof row->date, "%.10s", text);
    }
    else
        snprintf (row->date, sizeof row->date, "-");
    snprintf (row->type, sizeof row->type, "%s", *d->deployment_type? d->deployment_type: "-");
    row->type [0] = (char) toupper ((unsigned char) row->type [0]);
    switch (d->state) {
        case AL_REPLAY_SUCCEEDED:         row->status = "Success"; break;
        case AL_REPLAY_ROLLED_BACK:       row->status = "Rolled back"; break;
        case AL_REPLAY_FAILED:            row->status = "Failed"; break;
        case AL_REPLAY_REFUSED:           row->status = "Refused"; break;
        case AL_REPLAY_AWAITING_APPROVAL: row->status = "Awaiting approval"; break;
        case AL_REPLAY_APPROVED:          row->status = "Approved"; break;
        case AL_REPLAY_RUNNING:           row->status = "In progress"; break;
        case AL_REPLAY_REQUESTED:         row->status = "Requested"; break;
        case AL_REPLAY_UNKNOWN:           row->status = "Unknown"; break;
    }
    row->rollback = d->state == AL_REPLAY_ROLLED_BACK? "Yes": "N/A";
    if (d->started_ms && d->finished_ms >= d->started_ms && replay_terminal (d->state))
        row->duration_ms = d->finished_ms - d->started_ms;
    if (d->state == AL_REPLAY_RUNNING)
        snprintf (row->notes, sizeof row->notes, "running %s", d->step);
    else
    if (*d->detail)
        snprintf (row->notes, sizeof row->notes, "%s", d->detail);
    else
    if (d->state == AL_REPLAY_SUCCEEDED && *d->receipt_sha256)
        snprintf (row->notes, sizeof row->notes, "receipt sha256 %.12s", d->receipt_sha256);
    if (d->state == AL_REPLAY_ROLLED_BACK && *d->previous_version) {
        size_t used = strlen (row->notes);
        snprintf (row->notes + used, sizeof row->notes - used, "%sback to %s", used? ", ": "", d->previous_version);
    }
}

//  ---- time ----------------------------------------------------------------------------------

static bool
s_digits (const char **text, int count, int *value)
{
    *value = 0;
    for (int i = 0; i < count; i++) {
        if (!isdigit ((unsigned char) (*text) [i]))
            return false;
        *value = *value * 10 + ((*text) [i] - '0');
    }
    *text += count;
    return true;
}

bool
al_replay_parse_time (const char *text, uint64_t *time_ms)
{
    assert (time_ms);
    if (!text || !*text)
        return false;
    size_t length = strlen (text);
    if (strspn (text, "0123456789") == length) {
        if (length > 15)                // beyond year 33658: not a time
            return false;
        *time_ms = strtoull (text, NULL, 10);
        return true;
    }
    int year, month, day, hour, minute, second;
    const char *p = text;
    if (!s_digits (&p, 4, &year) || *p++ != '-' || !s_digits (&p, 2, &month) || *p++ != '-'
    ||  !s_digits (&p, 2, &day) || (*p != 'T' && *p != 't' && *p != ' '))
        return false;
    p++;
    if (!s_digits (&p, 2, &hour) || *p++ != ':' || !s_digits (&p, 2, &minute) || *p++ != ':'
    ||  !s_digits (&p, 2, &second))
        return false;
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
        return false;
    int64_t millis = 0;
    if (*p == '.') {
        p++;
        int scale = 100, digits = 0;
        while (isdigit ((unsigned char) *p)) {
            millis += (*p - '0') * scale;
            scale /= 10;
            digits++;
            p++;
        }
        if (digits == 0)
            return false;
    }
    int64_t offset_s = 0;
    if (*p == 'Z' || *p == 'z')
        p++;
    else
    if (*p == '+' || *p == '-') {
        int sign = *p++ == '-'? -1: 1, offset_hour, offset_minute;
        if (!s_digits (&p, 2, &offset_hour) || *p++ != ':' || !s_digits (&p, 2, &offset_minute)
        ||  offset_hour > 23 || offset_minute > 59)
            return false;
        offset_s = sign * (offset_hour * 3600 + offset_minute * 60);
    }
    else
        return false;
    if (*p)
        return false;
    struct tm utc = { .tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day,
                      .tm_hour = hour, .tm_min = minute, .tm_sec = second };
    time_t seconds = timegm (&utc);
    //  timegm normalises 31 February into March: such a date is not one.
    if (utc.tm_mday != day && second < 60)
        return false;
    int64_t total = (int64_t) seconds - offset_s;
    if (total < 0)
        return false;
    *time_ms = (uint64_t) total * 1000 + (uint64_t) millis;
    return true;
}
