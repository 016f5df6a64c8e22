/*  al_agent_options.c: the agent runtime's options: defaults, airlock.yaml, checks.

    Pure functions over al_agent_options_t; no state, any thread.
*/
#include "agents/al_agent_int.h"

//  ---------------------------------------------------------------------------------
//  Options

void
al_agent_options_defaults (al_agent_options_t *options)
{
    assert (options);
    memset (options, 0, sizeof *options);
    options->subscribe_deliveries = false;
    options->heartbeat_ms = AL_CONFIG_DEFAULT_HEARTBEAT_MS;
    options->retry_ms = 3000;
    options->reconnect_ivl_ms = 250;
    //  At most 1 s between attempts: `up` restarts a crashed broker within 1 s, and a
    //  longer cap kept agents away from the new one for up to 13 s (issue 19).
    options->reconnect_ivl_max_ms = 1000;
    options->handshake_ms = AL_CONFIG_DEFAULT_HANDSHAKE_MS;
    options->sndhwm = AL_CONFIG_DEFAULT_SNDHWM;
    options->rcvhwm = AL_CONFIG_DEFAULT_RCVHWM;
    options->max_pending = 10000;
    options->max_reply_bytes = 4 * 1024 * 1024;
}

int
al_agent_options_from_config (al_agent_options_t *options, const al_config_t *config,
                              const char *role, char *error, size_t error_size)
{
    assert (options);
    assert (config);
    assert (role);
    if (al_agent__identity_from_config (config, role, al_config_broker_endpoints (config),
                                        "endpoints.brokers", options->endpoint,
                                        options->broker_key, options->cert_path,
                                        error, error_size)
    ||  al_agent__copy (options->name, sizeof options->name, role, "role", error, error_size))
        return -1;
    options->heartbeat_ms = al_config_heartbeat_ms (config);
    options->handshake_ms = al_config_handshake_ms (config);
    options->sndhwm = al_config_sndhwm (config);
    options->rcvhwm = al_config_rcvhwm (config);
    if (options->max_reply_bytes < 4 * al_config_max_message_bytes (config))
        options->max_reply_bytes = 4 * al_config_max_message_bytes (config);
    return 0;
}

int
al_agent__options_check (const al_agent_options_t *options, char *error, size_t error_size)
{
    uint8_t key [32];
    char (*endpoints) [AL_AGENT_PATH_SIZE] = malloc (AL_AGENT_MAX_ENDPOINTS * sizeof *endpoints);
    assert (endpoints);
    int count = al_agent_endpoints_split (options->endpoint, endpoints, error, error_size);
    free (endpoints);
    if (count < 0)
        return -1;
    if (strlen (options->broker_key) != 40 || !zmq_z85_decode (key, options->broker_key)) {
        snprintf (error, error_size, "broker_key: '%s' is not a 40-character Z85 CURVE key",
                  options->broker_key);
        return -1;
    }
    if (!*options->cert_path) {
        snprintf (error, error_size, "cert_path: is required");
        return -1;
    }
    if (!*options->name) {
        snprintf (error, error_size, "name: is required");
        return -1;
    }
    if (options->heartbeat_ms < AL_CODEC_MIN_HEARTBEAT_MS
    ||  options->heartbeat_ms > AL_CODEC_MAX_HEARTBEAT_MS) {
        snprintf (error, error_size, "heartbeat_ms: %d is outside %d..%d", options->heartbeat_ms,
                  AL_CODEC_MIN_HEARTBEAT_MS, AL_CODEC_MAX_HEARTBEAT_MS);
        return -1;
    }
    if (options->retry_ms < 1 || options->reconnect_ivl_ms < 1
    ||  options->reconnect_ivl_max_ms < options->reconnect_ivl_ms || options->handshake_ms < 1
    ||  options->sndhwm < 1 || options->rcvhwm < 1 || options->max_pending < 1
    ||  options->max_reply_bytes < 1024) {
        snprintf (error, error_size, "options: retry, reconnect, handshake, hwm and size limits "
                  "must be positive (reconnect_ivl_max_ms >= reconnect_ivl_ms, max_reply_bytes >= 1024)");
        return -1;
    }
    return 0;
}

int
al_agent_endpoints_split (const char *list, char (*endpoints) [AL_AGENT_PATH_SIZE],
                           char *error, size_t error_size)
{
    assert (list);
    int count = 0;
    const char *cursor = list;
    while (true) {
        const char *comma = strchr (cursor, ',');
        const char *end = comma ? comma : cursor + strlen (cursor);
        while (cursor < end && (*cursor == ' ' || *cursor == '\t'))
            cursor++;
        while (end > cursor && (end [-1] == ' ' || end [-1] == '\t'))
            end--;
        size_t length = (size_t) (end - cursor);
        if (length == 0) {
            snprintf (error, error_size, "endpoint: '%s': %s", list,
                      *list ? "an empty item in the list" : "is required");
            return -1;
        }
        if (count == AL_AGENT_MAX_ENDPOINTS) {
            snprintf (error, error_size, "endpoint: '%s': more than %d endpoints", list,
                      AL_AGENT_MAX_ENDPOINTS);
            return -1;
        }
        if (!memchr (cursor, ':', length) || length >= AL_AGENT_PATH_SIZE) {
            snprintf (error, error_size, "endpoint: '%.*s' is not a ZeroMQ endpoint (tcp://HOST:PORT, ipc://PATH)",
                      (int) (length < 200 ? length : 200), cursor);
            return -1;
        }
        memcpy (endpoints [count], cursor, length);
        endpoints [count][length] = 0;
        count++;
        if (!comma)
            break;
        cursor = comma + 1;
    }
    return count;
}

const char *
al_agent_endpoints_describe (const char *list, char *text, size_t size)
{
    assert (list && text && size);
    char (*endpoints) [AL_AGENT_PATH_SIZE] = malloc (AL_AGENT_MAX_ENDPOINTS * sizeof *endpoints);
    char error [256];
    int count = endpoints? al_agent_endpoints_split (list, endpoints, error, sizeof error): -1;
    if (count <= 1)
        //  One endpoint, or a list that does not split (named as written: the message
        //  about it must still say what was configured).
        snprintf (text, size, "%s", count == 1? endpoints [0]: list);
    else {
        int used = snprintf (text, size, "any of %d brokers (", count);
        for (int index = 0; index < count && used >= 0 && (size_t) used < size; index++)
            used += snprintf (text + used, size - (size_t) used, "%s%s", index? ", ": "", endpoints [index]);
        if (used >= 0 && (size_t) used < size)
            snprintf (text + used, size - (size_t) used, ")");
    }
    free (endpoints);
    return text;
}
