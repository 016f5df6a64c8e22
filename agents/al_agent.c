/*  al_agent.c: the agent runtime (see al_agent.h for the contract).

    Two halves share one mutex. The caller's half (any thread) packs envelopes into
    outbox entries, waits on a condition variable for outcomes and deliveries, and wakes
    the actor with one "WAKE" on the actor pipe (never more than one in flight, so the
    pipe never fills). The actor's half owns the DEALER socket and its monitor: it sends
    what the outbox holds, reads Ack / Denied / Heartbeat / StatusReply / deliveries,
    heartbeats, and remakes the socket when the broker stops answering (that half is
    al_agent_link.c; the options are al_agent_options.c; shared state al_agent_int.h).

    Outbox invariants: every entry is in the `entries` table (which owns it) until its
    outcome is collected (or at once for internal and abandoned ones). An entry without
    an outcome is in exactly one of two lists: `unsent` (to send on the current link, in
    order) or `inflight` (sent on the current link, oldest send first, so the retry scan
    stops at the first entry that is not due). A new link moves everything back to
    `unsent`, behind a fresh Register.
*/
#include "agents/al_agent_int.h"

//  Longest slice a caller sleeps before re-checking deadlines and the interrupt flag.
#define S_WAIT_SLICE_MS 200

static volatile sig_atomic_t s_interrupted = 0;

//  snprintf into an error buffer; truncation of an error text is acceptable.
void
al_agent__format (char *target, size_t size, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (target, size, format, args);
    va_end (args);
}

static void
s_entry_destroy (void **item_p)
{
    al_agent_entry_t *entry = *item_p;
    if (entry) {
        free (entry->data);
        al_codec_free (&entry->reply);
        free (entry);
        *item_p = NULL;
    }
}

static void
s_envelope_destroy (void **item_p)
{
    al_envelope_t *envelope = *item_p;
    al_codec_free (&envelope);
    *item_p = NULL;
}

//  Under the lock: the next message id.
void
al_agent__next_id (al_agent_t *self, char *id)
{
    snprintf (id, AL_AGENT_ID_SIZE, "%s-%016" PRIx64 "-%" PRIu64,
              self->id_prefix, self->boot_id, ++self->counter);
}

//  Under the lock: make sure the actor looks at the shared state soon.
void
al_agent__wake (al_agent_t *self)
{
    if (!self->wake_pending && self->actor) {
        self->wake_pending = true;
        zstr_send (self->actor, "WAKE");
    }
}

//  Under the lock: take an entry out of the send lists.
void
al_agent__entry_unlist (al_agent_t *self, al_agent_entry_t *entry)
{
    if (entry->handle) {
        zlistx_delete (entry->queued ? self->unsent : self->inflight, entry->handle);
        entry->handle = NULL;
    }
}

//  Under the lock: the entry has its outcome (in entry->result). Wake waiters.
void
al_agent__entry_finish (al_agent_t *self, al_agent_entry_t *entry)
{
    assert (!entry->done);
    al_agent__entry_unlist (self, entry);
    entry->done = true;
    strcpy (entry->result.message_id, entry->id);
    if (entry->kind != AL_AGENT_KIND_REGISTER) {
        assert (self->pending > 0);
        self->pending--;
        al_telemetry_add (al_telemetry_series (al_telemetry_process (), AL_TELEMETRY_COUNTER, "airlock_agent_messages_total",
                                         "Messages this agent sent, by the broker's answer", "outcome",
                                         al_agent_status_name (entry->result.status), NULL, NULL), 1);
    }
    if (entry->kind == AL_AGENT_KIND_REGISTER || entry->detached)
        zhashx_delete (self->entries, entry->id);
    else
    if (entry->kind == AL_AGENT_KIND_POSTED)
        entry->done_handle = zlistx_add_end (self->completed, entry);
    pthread_cond_broadcast (&self->cond);
}

//  Under the lock: the caller collected the outcome; forget the entry.
static void
s_entry_collect (al_agent_t *self, al_agent_entry_t *entry, al_agent_result_t *result)
{
    assert (entry->done);
    if (result)
        *result = entry->result;
    if (entry->done_handle)
        zlistx_delete (self->completed, entry->done_handle);
    zhashx_delete (self->entries, entry->id);
}

static void
s_result_clear (al_agent_result_t *result, al_agent_status_t status)
{
    memset (result, 0, sizeof *result);
    result->status = status;
}

//  Wait on the condition until signalled, a slice passes, or the deadline (-1: none).
//  Returns false once the deadline has passed. Called with the lock held.
static bool
s_wait (al_agent_t *self, int64_t deadline)
{
    int64_t now = al_clock_mono_ms ();
    if (deadline >= 0 && now >= deadline)
        return false;
    int64_t until = now + S_WAIT_SLICE_MS;
    if (deadline >= 0 && deadline < until)
        until = deadline;
    struct timespec ts = { .tv_sec = until / 1000, .tv_nsec = (until % 1000) * 1000000 };
    pthread_cond_timedwait (&self->cond, &self->mutex, &ts);
    return true;
}

static int64_t
s_deadline (int timeout_ms)
{
    return timeout_ms < 0 ? -1 : al_clock_mono_ms () + timeout_ms;
}

//  ---------------------------------------------------------------------------------
//  The caller's side

al_agent_t *
al_agent_new (const al_agent_options_t *options, char *error, size_t error_size)
{
    assert (options);
    if (al_agent__options_check (options, error, error_size) != 0)
        return NULL;
    if (sodium_init () < 0) {
        snprintf (error, error_size, "libsodium: cannot initialise");
        return NULL;
    }
    al_agent_t *self = calloc (1, sizeof *self);
    assert (self);
    self->options = *options;
    self->cert = al_agent__cert_load (options->cert_path, error, error_size);
    if (!self->cert)
        goto failed;
    // Message id prefix: the name as visible ASCII, short enough for a 64-character id.
    size_t length = 0;
    for (const char *c = options->name; *c && length < 24; c++)
        self->id_prefix [length++] = (*c > 0x20 && *c < 0x7F) ? *c : '_';
    self->id_prefix [length] = 0;
    randombytes_buf (&self->boot_id, sizeof self->boot_id);

    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->cond, &attr);
    pthread_condattr_destroy (&attr);
    pthread_mutex_init (&self->mutex, NULL);
    self->entries = zhashx_new ();
    zhashx_set_destructor (self->entries, s_entry_destroy);
    self->unsent = zlistx_new ();
    self->inflight = zlistx_new ();
    self->completed = zlistx_new ();
    self->deliveries = zlistx_new ();
    zlistx_set_destructor (self->deliveries, s_envelope_destroy);
    self->held = zhashx_new ();
    assert (self->entries && self->unsent && self->inflight && self->completed
         && self->deliveries && self->held);

    self->endpoints = malloc (AL_AGENT_MAX_ENDPOINTS * sizeof *self->endpoints);
    assert (self->endpoints);
    int endpoint_count = al_agent_endpoints_split (options->endpoint, self->endpoints,
                                                    error, error_size);
    //  al_agent__options_check passed the same list.
    assert (endpoint_count > 0);
    self->endpoint_count = (size_t) endpoint_count;
    self->actor = zactor_new (al_agent__actor, self);
    if (!self->actor || *self->start_error) {
        snprintf (error, error_size, "%s", *self->start_error ? self->start_error
                                                              : "cannot start the agent actor");
        goto failed;
    }
    return self;
failed:
    al_agent_destroy (&self);
    return NULL;
}

void
al_agent_destroy (al_agent_t **self_p)
{
    assert (self_p);
    al_agent_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy (&self->actor);
    if (self->entries) {
        zlistx_destroy (&self->unsent);
        zlistx_destroy (&self->inflight);
        zlistx_destroy (&self->completed);
        zhashx_destroy (&self->entries);
        zlistx_destroy (&self->deliveries);
        zhashx_destroy (&self->held);
        pthread_mutex_destroy (&self->mutex);
        pthread_cond_destroy (&self->cond);
    }
    free (self->ack_queue);
    free (self->endpoints);
    zcert_destroy (&self->cert);
    free (self);
    *self_p = NULL;
}

const char *
al_agent_status_name (al_agent_status_t status)
{
    switch (status) {
        case AL_AGENT_ACKED:   return "acked";
        case AL_AGENT_DENIED:  return "denied";
        case AL_AGENT_TIMEOUT: return "timeout";
        case AL_AGENT_INVALID: return "invalid";
        case AL_AGENT_QUEUED:  return "queued";
        case AL_AGENT_BUSY:    return "busy";
    }
    return "unknown";
}

//  Pack ENVELOPE into a new entry of KIND and put it in the outbox, waiting while the
//  outbox is full. Returns QUEUED with *entry_p set, or BUSY / INVALID.
static al_agent_status_t
s_enqueue (al_agent_t *self, const al_envelope_t *envelope, al_agent_kind_t kind, int timeout_ms,
           al_agent_entry_t **entry_p, char *message_id, char *error, size_t error_size)
{
    assert (self);
    assert (envelope);
    *entry_p = NULL;
    int64_t deadline = s_deadline (timeout_ms);
    al_agent_entry_t *entry = calloc (1, sizeof *entry);
    assert (entry);
    entry->kind = kind;
    if (envelope->message_id && *envelope->message_id) {
        if (strlen (envelope->message_id) > AL_CODEC_MAX_ID_LEN) {
            snprintf (error, error_size, "message_id: longer than %d characters", AL_CODEC_MAX_ID_LEN);
            free (entry);
            return AL_AGENT_INVALID;
        }
        strcpy (entry->id, envelope->message_id);
    }
    else {
        pthread_mutex_lock (&self->mutex);
        al_agent__next_id (self, entry->id);
        pthread_mutex_unlock (&self->mutex);
    }
    // Pack a shallow copy: our id and time; sender and delivery_id are the broker's.
    al_envelope_t copy = *envelope;
    copy.message_id = entry->id;
    if (copy.timestamp_ms == 0)
        copy.timestamp_ms = al_clock_wall_ms ();
    copy.sender = NULL;
    copy.delivery_id = 0;
    char reason [256];
    if (al_codec_pack (&copy, &entry->data, &entry->size, reason, sizeof reason) != AL_CODEC_OK) {
        snprintf (error, error_size, "%s", reason);
        free (entry);
        return AL_AGENT_INVALID;
    }
    pthread_mutex_lock (&self->mutex);
    while (self->pending >= self->options.max_pending)
        if (!s_wait (self, deadline))
            break;
    al_agent_status_t status = AL_AGENT_QUEUED;
    if (self->pending >= self->options.max_pending) {
        snprintf (error, error_size, "the outbox holds %zu messages", self->pending);
        status = AL_AGENT_BUSY;
    }
    else
    if (zhashx_lookup (self->entries, entry->id)) {
        snprintf (error, error_size, "message_id: '%s' is already in the outbox", entry->id);
        status = AL_AGENT_INVALID;
    }
    else {
        zhashx_insert (self->entries, entry->id, entry);
        entry->queued = true;
        entry->handle = zlistx_add_end (self->unsent, entry);
        self->pending++;
        al_agent__wake (self);
        *entry_p = entry;
        if (message_id)
            strcpy (message_id, entry->id);
    }
    pthread_mutex_unlock (&self->mutex);
    if (status != AL_AGENT_QUEUED)
        s_entry_destroy ((void **) &entry);
    return status;
}

//  Under the lock: wait for a sync or status entry; on timeout leave it detached.
static al_agent_status_t
s_wait_entry (al_agent_t *self, al_agent_entry_t *entry, int64_t deadline, al_agent_result_t *result,
              al_envelope_t **reply_p)
{
    while (!entry->done)
        if (!s_wait (self, deadline))
            break;
    if (!entry->done) {
        entry->detached = true;
        s_result_clear (result, AL_AGENT_TIMEOUT);
        strcpy (result->message_id, entry->id);
        return AL_AGENT_TIMEOUT;
    }
    if (reply_p) {
        *reply_p = entry->reply;
        entry->reply = NULL;
    }
    s_entry_collect (self, entry, result);
    return result->status;
}

al_agent_status_t
al_agent_send (al_agent_t *self, const al_envelope_t *envelope, int timeout_ms,
               al_agent_result_t *result)
{
    assert (self);
    assert (result);
    int64_t deadline = s_deadline (timeout_ms);
    al_agent_entry_t *entry;
    s_result_clear (result, AL_AGENT_INVALID);
    al_agent_status_t status = s_enqueue (self, envelope, AL_AGENT_KIND_SYNC, timeout_ms, &entry,
                                          NULL, result->reason, sizeof result->reason);
    if (status != AL_AGENT_QUEUED) {
        result->status = status == AL_AGENT_BUSY ? AL_AGENT_TIMEOUT : status;
        return result->status;
    }
    pthread_mutex_lock (&self->mutex);
    status = s_wait_entry (self, entry, deadline, result, NULL);
    pthread_mutex_unlock (&self->mutex);
    return status;
}

al_agent_status_t
al_agent_post (al_agent_t *self, const al_envelope_t *envelope, int timeout_ms,
               char *message_id, char *error, size_t error_size)
{
    al_agent_entry_t *entry;
    char reason [256] = "";
    al_agent_status_t status = s_enqueue (self, envelope, AL_AGENT_KIND_POSTED, timeout_ms, &entry,
                                          message_id, reason, sizeof reason);
    if (status != AL_AGENT_QUEUED && error)
        snprintf (error, error_size, "%s", reason);
    return status;
}

al_agent_status_t
al_agent_wait (al_agent_t *self, const char *message_id, int timeout_ms, al_agent_result_t *result)
{
    assert (self);
    assert (message_id);
    assert (result);
    int64_t deadline = s_deadline (timeout_ms);
    pthread_mutex_lock (&self->mutex);
    al_agent_entry_t *entry = zhashx_lookup (self->entries, message_id);
    if (!entry || entry->kind != AL_AGENT_KIND_POSTED) {
        pthread_mutex_unlock (&self->mutex);
        s_result_clear (result, AL_AGENT_INVALID);
        snprintf (result->reason, sizeof result->reason, "no posted message '%s'", message_id);
        return AL_AGENT_INVALID;
    }
    while (!entry->done)
        if (!s_wait (self, deadline))
            break;
    al_agent_status_t status = AL_AGENT_TIMEOUT;
    if (entry->done) {
        s_entry_collect (self, entry, result);
        status = result->status;
    }
    else {
        s_result_clear (result, AL_AGENT_TIMEOUT);
        snprintf (result->message_id, sizeof result->message_id, "%s", message_id);
    }
    pthread_mutex_unlock (&self->mutex);
    return status;
}

al_agent_status_t
al_agent_next_result (al_agent_t *self, int timeout_ms, al_agent_result_t *result)
{
    assert (self);
    assert (result);
    int64_t deadline = s_deadline (timeout_ms);
    pthread_mutex_lock (&self->mutex);
    while (zlistx_size (self->completed) == 0)
        if (!s_wait (self, deadline))
            break;
    al_agent_entry_t *entry = zlistx_first (self->completed);
    al_agent_status_t status = AL_AGENT_TIMEOUT;
    if (entry) {
        s_entry_collect (self, entry, result);
        status = result->status;
    }
    else
        s_result_clear (result, AL_AGENT_TIMEOUT);
    pthread_mutex_unlock (&self->mutex);
    return status;
}

size_t
al_agent_pending (al_agent_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    size_t pending = self->pending;
    pthread_mutex_unlock (&self->mutex);
    return pending;
}

int
al_agent_flush (al_agent_t *self, int timeout_ms)
{
    assert (self);
    int64_t deadline = s_deadline (timeout_ms);
    pthread_mutex_lock (&self->mutex);
    al_agent__wake (self);
    while (self->pending > 0 || self->ack_count > 0)
        if (!s_wait (self, deadline))
            break;
    int rc = self->pending > 0 || self->ack_count > 0 ? -1 : 0;
    pthread_mutex_unlock (&self->mutex);
    return rc;
}

al_envelope_t *
al_agent_recv (al_agent_t *self, int timeout_ms)
{
    assert (self);
    int64_t deadline = s_deadline (timeout_ms);
    pthread_mutex_lock (&self->mutex);
    while (zlistx_size (self->deliveries) == 0 && !al_agent_interrupted ())
        if (!s_wait (self, deadline))
            break;
    al_envelope_t *envelope = NULL;
    if (!al_agent_interrupted ()) {
        void *handle = zlistx_first (self->deliveries) ? zlistx_cursor (self->deliveries) : NULL;
        if (handle)
            envelope = zlistx_detach (self->deliveries, handle);
    }
    pthread_mutex_unlock (&self->mutex);
    if (envelope)
        al_telemetry_add (al_telemetry_series (al_telemetry_process (), AL_TELEMETRY_COUNTER, "airlock_agent_deliveries_total",
                                         "Deliveries this agent received from the broker", NULL, NULL, NULL, NULL), 1);
    return envelope;
}

int
al_agent_ack_delivery (al_agent_t *self, uint64_t delivery_id)
{
    assert (self);
    char key [24];
    snprintf (key, sizeof key, "%" PRIu64, delivery_id);
    pthread_mutex_lock (&self->mutex);
    int rc = -1;
    if (delivery_id && zhashx_lookup (self->held, key)) {
        zhashx_delete (self->held, key);
        self->acked_ring [self->acked_next] = delivery_id;
        self->acked_next = (self->acked_next + 1) % AL_AGENT_ACKED_RING;
        al_agent__queue_delivery_ack (self, delivery_id);
        al_agent__wake (self);
        rc = 0;
    }
    pthread_mutex_unlock (&self->mutex);
    return rc;
}

al_envelope_t *
al_agent_status_query (al_agent_t *self, const char *what, const char *filter, uint32_t limit,
                       int timeout_ms, al_agent_result_t *result)
{
    assert (self);
    assert (what);
    assert (result);
    int64_t deadline = s_deadline (timeout_ms);
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    Airlock__StatusQuery query = AIRLOCK__STATUS_QUERY__INIT;
    query.what = (char *) what;
    query.filter = (char *) (filter ? filter : "");
    query.limit = limit;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_STATUS_QUERY;
    envelope.status_query = &query;
    al_agent_entry_t *entry;
    s_result_clear (result, AL_AGENT_INVALID);
    al_agent_status_t status = s_enqueue (self, &envelope, AL_AGENT_KIND_STATUS, timeout_ms, &entry,
                                          NULL, result->reason, sizeof result->reason);
    if (status != AL_AGENT_QUEUED) {
        result->status = status == AL_AGENT_BUSY ? AL_AGENT_TIMEOUT : status;
        return NULL;
    }
    al_envelope_t *reply = NULL;
    pthread_mutex_lock (&self->mutex);
    s_wait_entry (self, entry, deadline, result, &reply);
    pthread_mutex_unlock (&self->mutex);
    return reply;
}

int
al_agent_wait_registered (al_agent_t *self, int timeout_ms)
{
    assert (self);
    int64_t deadline = s_deadline (timeout_ms);
    pthread_mutex_lock (&self->mutex);
    while (!self->info.registered)
        if (!s_wait (self, deadline))
            break;
    int rc = self->info.registered ? 0 : -1;
    pthread_mutex_unlock (&self->mutex);
    return rc;
}

void
al_agent_info (al_agent_t *self, al_agent_info_t *info)
{
    assert (self);
    assert (info);
    pthread_mutex_lock (&self->mutex);
    *info = self->info;
    info->pending = self->pending;
    pthread_mutex_unlock (&self->mutex);
}

void
al_agent_last_error (al_agent_t *self, char *error, size_t error_size)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    snprintf (error, error_size, "%s", self->last_error);
    pthread_mutex_unlock (&self->mutex);
}

//  ---------------------------------------------------------------------------------
//  Signals

static void
s_signal_handler (int signal_value)
{
    (void) signal_value;
    s_interrupted = 1;
    // What czmq's own handler does, so czmq loops elsewhere in the process stop too.
    zsys_interrupted = 1;
}

void
al_agent_catch_signals (void)
{
    zsys_init ();
    zsys_handler_set (s_signal_handler);
}

bool
al_agent_interrupted (void)
{
    return s_interrupted || zsys_interrupted;
}

void
al_agent_set_interrupted (bool interrupted)
{
    s_interrupted = interrupted;
    zsys_interrupted = interrupted;
}

al_agent_t *
al_agent_new_for_role (const al_config_t *config, const char *role, bool subscribe_deliveries,
                       char *error, size_t error_size)
{
    al_agent_options_t options;
    al_agent_options_defaults (&options);
    if (al_agent_options_from_config (&options, config, role, error, error_size) != 0)
        return NULL;
    options.subscribe_deliveries = subscribe_deliveries;
    return al_agent_new (&options, error, error_size);
}
