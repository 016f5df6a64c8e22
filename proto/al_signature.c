/*  al_signature.c: approval signature verification (raw Ed25519 and OpenSSH SSHSIG).

    SSHSIG (OpenSSH PROTOCOL.sshsig), all integers big-endian, "string" = u32 length + bytes:

        blob        = "SSHSIG" u32(1) string(publickey) string(namespace) string(reserved)
                      string(hash_algorithm) string(signature)
        publickey   = string("ssh-ed25519") string(32-byte key)
        signature   = string("ssh-ed25519") string(64-byte Ed25519 signature)
        signed data = "SSHSIG" string(namespace) string(reserved) string(hash_algorithm)
                      string(H(message))        with H = SHA-512 or SHA-256

    The parser is a bounds-checked cursor: every read checks the remaining length first,
    every field must be consumed exactly, and trailing bytes are an error. Only ed25519
    keys are accepted (the approver table holds Ed25519 keys).
*/
#include "proto/al_signature.h"
#include "base/al_error.h"
#include "proto/al_codec.h"

#include <assert.h>
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static const char s_armor_begin [] = "-----BEGIN SSH SIGNATURE-----";
static const char s_armor_end [] = "-----END SSH SIGNATURE-----";
static const char s_magic [] = "SSHSIG";     // 6 bytes, no NUL on the wire
#define S_MAGIC_SIZE 6

const char *
al_sig_strerror (al_sig_status_t status)
{
    switch (status) {
        case AL_SIG_OK: return "ok";
        case AL_SIG_ERR_FORMAT: return "malformed signature";
        case AL_SIG_ERR_KEY: return "wrong or missing public key";
        case AL_SIG_ERR_NAMESPACE: return "wrong SSHSIG namespace";
        case AL_SIG_ERR_BAD_SIGNATURE: return "signature does not verify";
        case AL_SIG_ERR_STATEMENT: return "invalid approval statement";
        case AL_SIG_ERR_NOMEM: return "out of memory";
    }
    return "unknown status";
}

//  A read cursor over untrusted bytes.
typedef struct {
    const uint8_t *data;
    size_t size;
} s_cursor_t;

static bool
s_read_u32 (s_cursor_t *cursor, uint32_t *value)
{
    if (cursor->size < 4)
        return false;
    const uint8_t *p = cursor->data;
    *value = (uint32_t) p [0] << 24 | (uint32_t) p [1] << 16 | (uint32_t) p [2] << 8 | p [3];
    cursor->data += 4;
    cursor->size -= 4;
    return true;
}

//  An SSH "string": the slice it holds is returned in *field (pointing into the input).
static bool
s_read_string (s_cursor_t *cursor, s_cursor_t *field)
{
    uint32_t length;
    if (!s_read_u32 (cursor, &length) || length > cursor->size)
        return false;
    field->data = cursor->data;
    field->size = length;
    cursor->data += length;
    cursor->size -= length;
    return true;
}

static bool
s_equals (const s_cursor_t *field, const char *text)
{
    size_t length = strlen (text);
    return field->size == length && memcmp (field->data, text, length) == 0;
}

//  An ed25519 key or signature blob: string(type) string(payload of expected size).
static bool
s_read_ed25519 (s_cursor_t blob, size_t payload_size, const uint8_t **payload)
{
    s_cursor_t type, value;
    if (!s_read_string (&blob, &type) || !s_equals (&type, "ssh-ed25519"))
        return false;
    if (!s_read_string (&blob, &value) || value.size != payload_size || blob.size != 0)
        return false;
    *payload = value.data;
    return true;
}

//  Strip the armor and base64-decode into a malloc'd buffer. Raw blobs (starting with
//  the magic) are copied as they are.
static uint8_t *
s_dearmor (const uint8_t *input, size_t input_size, size_t *size_p)
{
    if (input_size >= S_MAGIC_SIZE && memcmp (input, s_magic, S_MAGIC_SIZE) == 0) {
        uint8_t *copy = malloc (input_size);
        if (copy) {
            memcpy (copy, input, input_size);
            *size_p = input_size;
        }
        return copy;
    }
    const char *text = (const char *) input;
    const char *begin = memmem (text, input_size, s_armor_begin, sizeof s_armor_begin - 1);
    if (!begin)
        return NULL;
    const char *body = begin + sizeof s_armor_begin - 1;
    const char *end = memmem (body, input_size - (size_t) (body - text), s_armor_end, sizeof s_armor_end - 1);
    if (!end)
        return NULL;
    size_t body_size = (size_t) (end - body);
    uint8_t *decoded = malloc (body_size + 1);
    if (!decoded)
        return NULL;
    size_t decoded_size = 0;
    const char *base64_end = NULL;
    if (sodium_base642bin (decoded, body_size + 1, body, body_size, " \t\r\n", &decoded_size,
                           &base64_end, sodium_base64_VARIANT_ORIGINAL) != 0
    ||  base64_end != end) {
        free (decoded);
        return NULL;
    }
    *size_p = decoded_size;
    return decoded;
}

//  Append an SSH string to a buffer at *offset (buffer large enough by construction).
static void
s_put_string (uint8_t *buffer, size_t *offset, const uint8_t *data, size_t size)
{
    buffer [*offset + 0] = (uint8_t) (size >> 24);
    buffer [*offset + 1] = (uint8_t) (size >> 16);
    buffer [*offset + 2] = (uint8_t) (size >> 8);
    buffer [*offset + 3] = (uint8_t) size;
    *offset += 4;
    if (size)
        memcpy (buffer + *offset, data, size);
    *offset += size;
}

al_sig_status_t
al_sshsig_verify (const uint8_t *blob_in, size_t blob_in_size,
                  const uint8_t *message, size_t message_size, const char *namespace_,
                  uint8_t public_key [AL_ED25519_PUBLIC_KEY_SIZE], char *error, size_t error_size)
{
    if (sodium_init () < 0)
        return AL_SIG_ERR_NOMEM;
    if (!blob_in || blob_in_size == 0 || blob_in_size > AL_SSHSIG_MAX_SIZE) {
        al_error_set (error, error_size, "sshsig: empty or larger than %d bytes", AL_SSHSIG_MAX_SIZE);
        return AL_SIG_ERR_FORMAT;
    }
    size_t blob_size = 0;
    uint8_t *blob = s_dearmor (blob_in, blob_in_size, &blob_size);
    if (!blob) {
        al_error_set (error, error_size, "sshsig: neither an armored SSH SIGNATURE nor an SSHSIG blob");
        return AL_SIG_ERR_FORMAT;
    }
    al_sig_status_t status = AL_SIG_ERR_FORMAT;
    uint8_t *signed_data = NULL;
    s_cursor_t cursor = { blob, blob_size };
    s_cursor_t key_blob, name, reserved, hash_name, signature_blob;
    uint32_t version;
    const uint8_t *key, *signature;

    if (cursor.size < S_MAGIC_SIZE || memcmp (cursor.data, s_magic, S_MAGIC_SIZE) != 0) {
        al_error_set (error, error_size, "sshsig: missing SSHSIG magic");
        goto cleanup;
    }
    cursor.data += S_MAGIC_SIZE;
    cursor.size -= S_MAGIC_SIZE;
    if (!s_read_u32 (&cursor, &version) || version != 1) {
        al_error_set (error, error_size, "sshsig: unsupported version");
        goto cleanup;
    }
    if (!s_read_string (&cursor, &key_blob) || !s_read_string (&cursor, &name)
    ||  !s_read_string (&cursor, &reserved) || !s_read_string (&cursor, &hash_name)
    ||  !s_read_string (&cursor, &signature_blob) || cursor.size != 0) {
        al_error_set (error, error_size, "sshsig: truncated or trailing bytes");
        goto cleanup;
    }
    if (!s_read_ed25519 (key_blob, AL_ED25519_PUBLIC_KEY_SIZE, &key)) {
        al_error_set (error, error_size, "sshsig: public key is not an ssh-ed25519 key");
        status = AL_SIG_ERR_KEY;
        goto cleanup;
    }
    if (!s_equals (&name, namespace_)) {
        al_error_set (error, error_size, "sshsig: namespace is not \"%s\"", namespace_);
        status = AL_SIG_ERR_NAMESPACE;
        goto cleanup;
    }
    if (!s_read_ed25519 (signature_blob, AL_ED25519_SIGNATURE_SIZE, &signature)) {
        al_error_set (error, error_size, "sshsig: signature is not an ssh-ed25519 signature");
        goto cleanup;
    }
    //  H(message) with the blob's hash algorithm.
    uint8_t digest [crypto_hash_sha512_BYTES];
    size_t digest_size;
    if (s_equals (&hash_name, "sha512")) {
        crypto_hash_sha512 (digest, message, message_size);
        digest_size = crypto_hash_sha512_BYTES;
    }
    else
    if (s_equals (&hash_name, "sha256")) {
        crypto_hash_sha256 (digest, message, message_size);
        digest_size = crypto_hash_sha256_BYTES;
    }
    else {
        al_error_set (error, error_size, "sshsig: hash algorithm must be sha512 or sha256");
        goto cleanup;
    }
    size_t signed_size = S_MAGIC_SIZE + 4 * 4 + name.size + reserved.size + hash_name.size + digest_size;
    signed_data = malloc (signed_size);
    if (!signed_data) {
        status = AL_SIG_ERR_NOMEM;
        goto cleanup;
    }
    size_t offset = 0;
    memcpy (signed_data, s_magic, S_MAGIC_SIZE);
    offset += S_MAGIC_SIZE;
    s_put_string (signed_data, &offset, name.data, name.size);
    s_put_string (signed_data, &offset, reserved.data, reserved.size);
    s_put_string (signed_data, &offset, hash_name.data, hash_name.size);
    s_put_string (signed_data, &offset, digest, digest_size);
    if (crypto_sign_verify_detached (signature, signed_data, offset, key) != 0) {
        al_error_set (error, error_size, "sshsig: signature does not verify");
        status = AL_SIG_ERR_BAD_SIGNATURE;
        goto cleanup;
    }
    memcpy (public_key, key, AL_ED25519_PUBLIC_KEY_SIZE);
    status = AL_SIG_OK;

cleanup:
    free (signed_data);
    free (blob);
    return status;
}

al_sig_status_t
al_signature_verify_approval (const Airlock__SignedApproval *approval,
                              uint8_t public_key [AL_ED25519_PUBLIC_KEY_SIZE],
                              char *error, size_t error_size)
{
    if (sodium_init () < 0)
        return AL_SIG_ERR_NOMEM;
    if (!approval || approval->statement.len == 0) {
        al_error_set (error, error_size, "signed_approval.statement: missing");
        return AL_SIG_ERR_STATEMENT;
    }
    if (approval->public_key.len != 0 && approval->public_key.len != AL_ED25519_PUBLIC_KEY_SIZE) {
        al_error_set (error, error_size, "signed_approval.public_key: must be %d bytes", AL_ED25519_PUBLIC_KEY_SIZE);
        return AL_SIG_ERR_KEY;
    }
    size_t bytes_size = 0;
    uint8_t *bytes = al_codec_signing_bytes (AL_SIGN_APPROVAL_STATEMENT, approval->statement.data,
                                             approval->statement.len, &bytes_size);
    if (!bytes)
        return AL_SIG_ERR_NOMEM;

    al_sig_status_t status;
    if (approval->format == AIRLOCK__SIGNATURE_FORMAT__SIG_ED25519) {
        if (approval->public_key.len != AL_ED25519_PUBLIC_KEY_SIZE) {
            al_error_set (error, error_size, "signed_approval.public_key: required for ed25519 signatures");
            status = AL_SIG_ERR_KEY;
        }
        else
        if (approval->signature.len != AL_ED25519_SIGNATURE_SIZE) {
            al_error_set (error, error_size, "signed_approval.signature: must be %d bytes", AL_ED25519_SIGNATURE_SIZE);
            status = AL_SIG_ERR_FORMAT;
        }
        else
        if (crypto_sign_verify_detached (approval->signature.data, bytes, bytes_size,
                                         approval->public_key.data) != 0) {
            al_error_set (error, error_size, "signed_approval.signature: does not verify with the given key");
            status = AL_SIG_ERR_BAD_SIGNATURE;
        }
        else {
            memcpy (public_key, approval->public_key.data, AL_ED25519_PUBLIC_KEY_SIZE);
            status = AL_SIG_OK;
        }
    }
    else
    if (approval->format == AIRLOCK__SIGNATURE_FORMAT__SIG_SSHSIG) {
        uint8_t signer [AL_ED25519_PUBLIC_KEY_SIZE];
        status = al_sshsig_verify (approval->signature.data, approval->signature.len, bytes, bytes_size,
                                   AL_SSHSIG_NAMESPACE, signer, error, error_size);
        if (status == AL_SIG_OK && approval->public_key.len == AL_ED25519_PUBLIC_KEY_SIZE
        &&  sodium_memcmp (signer, approval->public_key.data, AL_ED25519_PUBLIC_KEY_SIZE) != 0) {
            al_error_set (error, error_size, "signed_approval.public_key: not the key inside the SSH signature");
            status = AL_SIG_ERR_KEY;
        }
        if (status == AL_SIG_OK)
            memcpy (public_key, signer, AL_ED25519_PUBLIC_KEY_SIZE);
    }
    else {
        al_error_set (error, error_size, "signed_approval.format: unknown signature format %d", (int) approval->format);
        status = AL_SIG_ERR_FORMAT;
    }
    free (bytes);
    return status;
}

al_sig_status_t
al_statement_unpack (const uint8_t *bytes, size_t size, Airlock__ApprovalStatement **statement_p,
                     char *error, size_t error_size)
{
    *statement_p = NULL;
    if (!bytes || size == 0 || size > AL_CODEC_DEFAULT_MAX_SIZE) {
        al_error_set (error, error_size, "statement: empty or too large");
        return AL_SIG_ERR_STATEMENT;
    }
    Airlock__ApprovalStatement *statement = airlock__approval_statement__unpack (NULL, size, bytes);
    if (!statement) {
        al_error_set (error, error_size, "statement: not a valid ApprovalStatement encoding");
        return AL_SIG_ERR_STATEMENT;
    }
    //  The codec's rules: required fields, digests, enum ranges, UTF-8 and no control
    //  characters in text an approver is shown.
    char fault [256];
    if (al_codec_validate_message (&statement->base, fault, sizeof fault) != AL_CODEC_OK) {
        al_error_set (error, error_size, "statement: %s", fault);
        airlock__approval_statement__free_unpacked (statement, NULL);
        return AL_SIG_ERR_STATEMENT;
    }
    *statement_p = statement;
    return AL_SIG_OK;
}

void
al_key_id (const uint8_t public_key [AL_ED25519_PUBLIC_KEY_SIZE], char key_id [32])
{
    char hex [17];
    sodium_bin2hex (hex, sizeof hex, public_key, 8);
    snprintf (key_id, 32, "ed25519:%s", hex);
}

bool
al_ssh_ed25519_public_key_parse (const char *line, uint8_t public_key [AL_ED25519_PUBLIC_KEY_SIZE])
{
    if (!line || sodium_init () < 0)
        return false;
    while (*line == ' ' || *line == '\t')
        line++;
    static const char prefix [] = "ssh-ed25519 ";
    if (strncmp (line, prefix, sizeof prefix - 1) != 0)
        return false;
    const char *encoded = line + sizeof prefix - 1;
    size_t encoded_size = strcspn (encoded, " \t\r\n");
    uint8_t blob [128];
    size_t blob_size = 0;
    if (encoded_size == 0 || encoded_size > 4 * sizeof blob / 3
    ||  sodium_base642bin (blob, sizeof blob, encoded, encoded_size, NULL, &blob_size, NULL,
                           sodium_base64_VARIANT_ORIGINAL) != 0)
        return false;
    const uint8_t *key;
    s_cursor_t cursor = { blob, blob_size };
    if (!s_read_ed25519 (cursor, AL_ED25519_PUBLIC_KEY_SIZE, &key))
        return false;
    memcpy (public_key, key, AL_ED25519_PUBLIC_KEY_SIZE);
    return true;
}

static const char s_secret_tag [] = "airlock-ed25519-secret-v1";
static const char s_public_tag [] = "airlock-ed25519";

//  Write text to a new file with mode; never replaces an existing file.
static bool
s_write_new_file (const char *path, const char *text, mode_t mode, char *error, size_t error_size)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        al_error_set (error, error_size, "%s: %s", path, errno == EEXIST ? "already exists, not overwritten"
                                                                   : "cannot create");
        return false;
    }
    size_t length = strlen (text);
    bool ok = write (fd, text, length) == (ssize_t) length && fsync (fd) == 0;
    ok = (close (fd) == 0) && ok;
    if (!ok) {
        unlink (path);
        al_error_set (error, error_size, "%s: write failed", path);
    }
    return ok;
}

al_sig_status_t
al_key_file_write (const char *path, const char *name, const uint8_t secret_key [AL_ED25519_SECRET_KEY_SIZE],
                   char *error, size_t error_size)
{
    if (sodium_init () < 0)
        return AL_SIG_ERR_NOMEM;
    if (!name || !*name || strlen (name) > 64 || strpbrk (name, " \t\r\n")) {
        al_error_set (error, error_size, "key name must be 1..64 characters without spaces");
        return AL_SIG_ERR_KEY;
    }
    char encoded [sodium_base64_ENCODED_LEN (AL_ED25519_SECRET_KEY_SIZE, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64 (encoded, sizeof encoded, secret_key, AL_ED25519_SECRET_KEY_SIZE,
                       sodium_base64_VARIANT_ORIGINAL);
    char line [256];
    snprintf (line, sizeof line, "%s %s %s\n", s_secret_tag, encoded, name);
    bool ok = s_write_new_file (path, line, 0600, error, error_size);
    sodium_memzero (line, sizeof line);
    sodium_memzero (encoded, sizeof encoded);
    if (!ok)
        return AL_SIG_ERR_KEY;
    char public_path [4096], hex [AL_ED25519_PUBLIC_KEY_SIZE * 2 + 1];
    snprintf (public_path, sizeof public_path, "%s.pub", path);
    //  The public key is the second half of libsodium's secret key.
    sodium_bin2hex (hex, sizeof hex, secret_key + 32, AL_ED25519_PUBLIC_KEY_SIZE);
    snprintf (line, sizeof line, "%s %s %s\n", s_public_tag, hex, name);
    if (!s_write_new_file (public_path, line, 0644, error, error_size)) {
        unlink (path);
        return AL_SIG_ERR_KEY;
    }
    return AL_SIG_OK;
}

bool
al_secret_file_private (const char *path, int fd, char *error, size_t error_size)
{
    struct stat st;
    if ((fd >= 0 ? fstat (fd, &st) : stat (path, &st)) != 0) {
        al_error_set (error, error_size, "%s: cannot stat: %s", path, strerror (errno));
        return false;
    }
    if ((st.st_mode & 077) != 0) {
        al_error_set (error, error_size, "%s: mode %04o: a secret key must be readable by its owner only (chmod 600 %s)",
                      path, (unsigned) (st.st_mode & 07777), path);
        return false;
    }
    return true;
}

al_sig_status_t
al_key_file_read (const char *path, uint8_t secret_key [AL_ED25519_SECRET_KEY_SIZE],
                  char *name, size_t name_size, char *error, size_t error_size)
{
    if (sodium_init () < 0)
        return AL_SIG_ERR_NOMEM;
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        al_error_set (error, error_size, "%s: cannot open", path);
        return AL_SIG_ERR_KEY;
    }
    char line [512];
    ssize_t length = -1;
    if (al_secret_file_private (path, fd, error, error_size))
        length = read (fd, line, sizeof line - 1);
    close (fd);
    if (length < 0)
        return AL_SIG_ERR_KEY;
    line [length] = 0;
    al_sig_status_t status = AL_SIG_ERR_KEY;
    char *tag = strtok (line, " \n");
    char *encoded = tag ? strtok (NULL, " \n") : NULL;
    char *key_name = encoded ? strtok (NULL, " \n") : NULL;
    size_t decoded = 0;
    if (!tag || strcmp (tag, s_secret_tag) != 0 || !encoded
    ||  sodium_base642bin (secret_key, AL_ED25519_SECRET_KEY_SIZE, encoded, strlen (encoded), NULL, &decoded,
                           NULL, sodium_base64_VARIANT_ORIGINAL) != 0
    ||  decoded != AL_ED25519_SECRET_KEY_SIZE) {
        al_error_set (error, error_size, "%s: not an airlock Ed25519 secret key file", path);
        goto cleanup;
    }
    //  The stored public half must be the one the seed derives: a corrupted file fails here.
    uint8_t public_key [AL_ED25519_PUBLIC_KEY_SIZE];
    crypto_sign_ed25519_sk_to_pk (public_key, secret_key);
    uint8_t seed [32], check_pk [32], check_sk [64];
    crypto_sign_ed25519_sk_to_seed (seed, secret_key);
    crypto_sign_seed_keypair (check_pk, check_sk, seed);
    bool consistent = sodium_memcmp (check_pk, public_key, sizeof public_key) == 0;
    sodium_memzero (seed, sizeof seed);
    sodium_memzero (check_sk, sizeof check_sk);
    if (!consistent) {
        al_error_set (error, error_size, "%s: corrupted secret key (public half does not match)", path);
        sodium_memzero (secret_key, AL_ED25519_SECRET_KEY_SIZE);
        goto cleanup;
    }
    if (name && name_size)
        snprintf (name, name_size, "%s", key_name ? key_name : "");
    status = AL_SIG_OK;
cleanup:
    sodium_memzero (line, sizeof line);
    return status;
}

//  Checked before `airlock approve` shows the request, so the human does not read it only
//  to be told "chmod 600" about a public key (moved from cli/cmd_approve.c).
bool
al_key_file_check_signing (const char *path, bool ssh, char *error, size_t error_size)
{
    assert (path);
    FILE *file = fopen (path, "r");
    if (!file) {
        snprintf (error, error_size, "%s: cannot open: %s", path, strerror (errno));
        return false;
    }
    char line [512] = "";
    struct stat st;
    bool stated = fstat (fileno (file), &st) == 0;
    if (!fgets (line, sizeof line, file))
        line [0] = '\0';
    fclose (file);
    static const char *public_prefixes [] = {
        "airlock-ed25519 ", "ssh-ed25519 ", "ssh-rsa ", "ssh-dss ", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-",
    };
    size_t length = strlen (path);
    bool named_pub = length > 4 && strcmp (path + length - 4, ".pub") == 0;
    for (size_t i = 0; i < sizeof public_prefixes / sizeof public_prefixes [0]; i++)
        if (strncmp (line, public_prefixes [i], strlen (public_prefixes [i])) == 0) {
            if (named_pub)
                snprintf (error, error_size, "%s: this is the public half of a key; give the private key file (%.*s)",
                          path, (int) (length - 4), path);
            else
                snprintf (error, error_size, "%s: this is the public half of a key; give the private key file", path);
            return false;
        }
    if (!stated || !S_ISREG (st.st_mode)) {
        snprintf (error, error_size, "%s: not a regular file", path);
        return false;
    }
    static const char ssh_header [] = "-----BEGIN OPENSSH PRIVATE KEY-----";
    static const char airlock_header [] = "airlock-ed25519-secret-v1 ";
    if (ssh && strncmp (line, ssh_header, strlen (ssh_header)) != 0) {
        snprintf (error, error_size, "%s: not an OpenSSH private key (%s)", path,
                  strncmp (line, airlock_header, strlen (airlock_header)) == 0
                  ? "it is an airlock key: use --key" : "expected " "-----BEGIN OPENSSH PRIVATE KEY-----");
        return false;
    }
    if (!ssh && strncmp (line, airlock_header, strlen (airlock_header)) != 0) {
        snprintf (error, error_size, "%s: not an airlock secret key file (%s)", path,
                  strncmp (line, ssh_header, strlen (ssh_header)) == 0
                  ? "it is an OpenSSH key: use --ssh-key" : "make one with `airlock keygen`");
        return false;
    }
    if (!al_secret_file_private (path, -1, error, error_size))
        return false;
    if (!ssh) {
        //  Read it whole now (format, public half consistent): a broken key fails here.
        uint8_t secret_key [AL_ED25519_SECRET_KEY_SIZE];
        al_sig_status_t status = al_key_file_read (path, secret_key, NULL, 0, error, error_size);
        sodium_memzero (secret_key, sizeof secret_key);
        if (status != AL_SIG_OK)
            return false;
    }
    return true;
}
