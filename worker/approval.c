/* approval: confirmation and approval before an action (issue 16). A command or the policy
 * rule that allowed it may say `confirm: true` or `approval: {roles, count, expires_s}`.
 * Such a request is parked instead of run: one Redis hash per request (`approval:<id>`,
 * holding the original request envelope, who asked, the roles, the count, who approved, the
 * state) with a TTL, and its id in a due-time sorted set (`approval:due`). The request's
 * answer is a progress message with buttons. A click (or the typed `approve|deny|confirm ID`)
 * is a request of its own, decided by one Lua script that checks and counts atomically;
 * when it is approved (or confirmed) the worker produces a continuation: the original
 * request with the same id, a fresh receive time and the dedupe key `approved:<id>`, so it
 * runs once through the ordinary run-once claim, after the gate found the hash approved.
 * Expiry: the lease timer runs one ZRANGEBYSCORE on the due set (no key scan) and posts
 * the expiry message; the entry leaves the set only when Kafka confirmed that message. */
#include "service.h"
#include "service_int.h"
#include "strutil.h"

#include "envelope.h"
#include "kafka.h"
#include "log.h"
#include "records.h"
#include "redis.h"
#include "utf8.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STR_(x) #x
#define CQ_STR(x) STR_(x)
#define PARK_SEQ 900000  /* progress seq of the parked message; PARK_SEQ + 1 its outcome */
#define ENDED_TTL_S 3600 /* an ended record stays readable (late clicks) this long */
#define SWEEP_BATCH 50
#define SWEEP_LEASE_MS 30000 /* an expiry being posted is retried after this */

/* PARK: KEYS[1] record, KEYS[2] due set; ARGV: id, kind, requester, roles ",a,b,", need,
 * expires_at ms, ttl s, request JSON. Creates the record once (a redelivered request finds
 * it and is answered the same way). */
static const char PARK_LUA[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'state', 'pending', 'kind', ARGV[2], 'requester', ARGV[3],\n"
    "  'roles', ARGV[4], 'need', ARGV[5], 'count', 0, 'expires_at', ARGV[6],\n"
    "  'approver_ids', ',', 'approvers', '', 'request', ARGV[8])\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[7])\n"
    "redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1])\n"
    "return 1\n";

/* CLICK: KEYS[1] record, KEYS[2] due set; ARGV: action, clicker id, clicker name, clicker
 * roles ",a,b,", now ms, id. Returns {what, request JSON or "", names or detail}. */
static const char CLICK_LUA[] =
    "local st = redis.call('HGET', KEYS[1], 'state')\n"
    "if not st then return {'gone', '', ''} end\n"
    "local h = redis.call('HMGET', KEYS[1], 'kind', 'expires_at', 'requester', 'roles',\n"
    "  'approver_ids', 'approvers', 'need', 'request', 'by')\n"
    "local kind, req = h[1], h[8]\n"
    "if st == 'pending' and tonumber(ARGV[5]) >= tonumber(h[2]) then\n"
    "  redis.call('HSET', KEYS[1], 'state', 'expired') st = 'expired' end\n"
    "if st ~= 'pending' then return {'ended', req, st .. ':' .. (h[9] or '')} end\n"
    "local act = ARGV[1]\n"
    "local function finish(state, by)\n"
    "  redis.call('HSET', KEYS[1], 'state', state, 'by', by)\n"
    "  redis.call('EXPIRE', KEYS[1], " CQ_STR(
        ENDED_TTL_S) ")\n"
                     "  redis.call('ZREM', KEYS[2], ARGV[6])\n"
                     "end\n"
                     "if kind == 'confirm' then\n"
                     "  if act == 'approve' then return {'wrongkind', '', kind} end\n"
                     "  if ARGV[2] ~= h[3] then return {'notyours', '', ''} end\n"
                     "  if act == 'confirm' then finish('approved', ARGV[3]) return {'approved', "
                     "req, ARGV[3]} end\n"
                     "  finish('denied', ARGV[3]) return {'denied', req, ARGV[3]}\n"
                     "end\n"
                     "if act ~= 'approve' and act ~= 'deny' then return {'wrongkind', '', kind} "
                     "end\n"
                     "if ARGV[2] == h[3] then return {'self', '', ''} end\n"
                     "local ok = false\n"
                     "for r in string.gmatch(ARGV[4], '[^,]+') do\n"
                     "  if string.find(h[4], ',' .. r .. ',', 1, true) then ok = true end end\n"
                     "if not ok then return {'role', '', h[4]} end\n"
                     "if string.find(h[5], ',' .. ARGV[2] .. ',', 1, true) then return {'twice', "
                     "'', h[6]} end\n"
                     "if act == 'deny' then finish('denied', ARGV[3]) return {'denied', req, "
                     "ARGV[3]} end\n"
                     "local names = h[6] == '' and ARGV[3] or (h[6] .. ',' .. ARGV[3])\n"
                     "local n = redis.call('HINCRBY', KEYS[1], 'count', 1)\n"
                     "redis.call('HSET', KEYS[1], 'approver_ids', h[5] .. ARGV[2] .. ',', "
                     "'approvers', names)\n"
                     "if n >= tonumber(h[7]) then finish('approved', names) return {'approved', "
                     "req, names} end\n"
                     "return {'counted', '', n .. ' of ' .. h[7]}\n";

/* GATE: KEYS[1] record. {state, approvers} of a continuation's request. */
static const char GATE_LUA[] = "local h = redis.call('HMGET', KEYS[1], 'state', 'by')\n"
                               "return {h[1] or 'gone', h[2] or ''}\n";

/* SWEEP: KEYS[1] due set; ARGV: now ms, record key prefix, batch, lease ms. Marks due
 * pending records expired and returns {id, request JSON} pairs to announce; an id stays in
 * the set (re-scored by the lease) until its message is confirmed, so a worker that dies
 * meanwhile leaves it to the next sweep; the notifier posts a (request, step, seq) once. */
static const char SWEEP_LUA[] =
    "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, "
    "tonumber(ARGV[3]))\n"
    "local out = {}\n"
    "for _, id in ipairs(ids) do\n"
    "  local k = ARGV[2] .. id\n"
    "  local st = redis.call('HGET', k, 'state')\n"
    "  if st == 'pending' then\n"
    "    redis.call('HSET', k, 'state', 'expired', 'by', '')\n"
    "    redis.call('EXPIRE', k, " CQ_STR(
        ENDED_TTL_S) ")\n"
                     "    st = 'expired' end\n"
                     "  if st == 'expired' then\n"
                     "    redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[4]), id)\n"
                     "    table.insert(out, id) table.insert(out, redis.call('HGET', k, "
                     "'request'))\n"
                     "  else redis.call('ZREM', KEYS[1], id) end\n"
                     "end\n"
                     "return out\n";

static const struct cq_rule *allowing_rule(const struct job *j) {
    for (size_t i = 0; j->dec.rule && i < j->cfg->n_rules; i++)
        if (j->cfg->rules[i].name && strcmp(j->cfg->rules[i].name, j->dec.rule) == 0)
            return &j->cfg->rules[i];
    return NULL;
}

/* What j needs before it runs: an approval (*ap set), a confirmation, or nothing. */
bool w_approval_needed(const struct job *j, const struct cq_approval **ap, bool *confirm) {
    const struct cq_rule *r = allowing_rule(j);
    *ap = NULL;
    *confirm = false;
    if (!j->cmd) return false;
    if (j->cmd->approval.roles)
        *ap = &j->cmd->approval;
    else if (r && r->approval.roles)
        *ap = &r->approval;
    *confirm = !*ap && (j->cmd->confirm || (r && r->confirm));
    return *ap || *confirm;
}

static char *key_of(const struct job *j, const char *id) {
    const char *p = j->cfg->redis.prefix ? j->cfg->redis.prefix : "";
    return id ? cq_strprintf("%sapproval:%s", p, id) : cq_strprintf("%sapproval:due", p);
}

static char *join_roles(char **roles) {
    size_t n = 2;
    for (size_t i = 0; roles && roles[i]; i++)
        n += strlen(roles[i]) + 1;
    char *s = malloc(n);
    if (!s) return NULL;
    strcpy(s, ",");
    for (size_t i = 0; roles && roles[i]; i++) {
        strcat(s, roles[i]);
        strcat(s, ",");
    }
    return s;
}

static const char *who(const struct job *j) {
    if (j->person && j->person->name) return j->person->name;
    return j->req.user_name && *j->req.user_name ? j->req.user_name : j->req.user_id;
}

/* Who counts as one person: the configured person (the same on every platform), else the
 * platform's user. New string; caller frees. */
static char *person_key(const struct job *j) {
    if (j->person && j->person->name) return cq_strprintf("p:%s", j->person->name);
    return cq_strprintf("u:%s:%s", j->req.platform, j->req.user_id);
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool redis_err(const redisReply *reply, const struct cq_err *err) {
    return err || !reply || reply->type == REDIS_REPLY_ERROR;
}

/* ---- the gate: park a request, or let an approved continuation through ---- */

static void on_parked(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct job *j = opaque;
    if (w_job_gone(j)) {
        w_job_op_end(j);
        return;
    }
    if (redis_err(reply, err)) {
        /* nothing ran: leave it for redelivery rather than answer wrongly */
        w_job_abandon(j, "redis unavailable parking the request for approval");
        w_job_op_end(j);
        return;
    }
    const struct cq_approval *ap;
    bool confirm;
    char label[256], roles[300] = "";
    w_approval_needed(j, &ap, &confirm);
    w_command_label(&j->req, label, sizeof(label));
    for (size_t i = 0; ap && ap->roles[i]; i++)
        snprintf(roles + strlen(roles), sizeof(roles) - strlen(roles), "%s%s", i ? ", " : "",
                 ap->roles[i]);
    int exp = ap ? ap->expires_s : j->cfg->worker.confirm_expires_s;
    j->step = "progress";
    j->seq = PARK_SEQ;
    j->buttons = ap ? "approval" : "confirm";
    char *text =
        ap ? cq_strprintf("`%s` by %s needs the approval of %d %s (role %s) within %d min.\n"
                          "Approve or deny with the buttons, or type `approve %s` / `deny %s`.",
                          label, who(j), ap->count, ap->count == 1 ? "person" : "people", roles,
                          (exp + 59) / 60, j->req.id, j->req.id)
           : cq_strprintf("Run `%s`? Confirm or cancel with the buttons within %d min, or type "
                          "`confirm %s` / `deny %s`.",
                          label, (exp + 59) / 60, j->req.id, j->req.id);
    cq_info(j->req.id, "%s parked for %s", label, ap ? "approval" : "confirmation");
    w_metric_approval("parked");
    w_finish_with(j, "ok", text);
    w_job_op_end(j);
}

static void on_gate(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct job *j = opaque;
    if (w_job_gone(j)) {
        w_job_op_end(j);
        return;
    }
    if (redis_err(reply, err) || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        w_job_abandon(j, "redis unavailable checking the approval");
        w_job_op_end(j);
        return;
    }
    const char *st = reply->element[0]->str ? reply->element[0]->str : "gone";
    const char *by = reply->element[1]->str ? reply->element[1]->str : "";
    if (strcmp(st, "approved") != 0) {
        w_finish_with(j, "denied",
                      cq_strprintf("`%s` was not approved (%s); it was NOT run (req %s)",
                                   w_cmd_name(j), st, j->req.id));
        w_job_op_end(j);
        return;
    }
    free(j->approvers);
    j->approvers = strdup(by);
    free(j->req.action.value); /* CHATOPS_APPROVERS: what Redis says, not what was sent */
    j->req.action.value = strdup(by);
    if (!j->approvers || !j->req.action.value) {
        w_job_abandon(j, "out of memory");
        w_job_op_end(j);
        return;
    }
    char *a = w_audit_json(j, "approval", "approved", NULL, NULL);
    w_produce(j, j->cfg->kafka.topic_audit, j->req.id, a);
    cq_info(j->req.id, "%s approved by %s: running", w_cmd_name(j), by);
    w_run_action(j);
    w_job_op_end(j);
}

bool w_approval_gate(struct job *j) {
    const struct cq_approval *ap;
    bool confirm;
    if (j->kind != JK_ACTION || !w_approval_needed(j, &ap, &confirm)) return false;
    bool cont = j->req.action.name && strcmp(j->req.action.name, "run") == 0;
    char *rec = key_of(j, j->req.id), *due = key_of(j, NULL);
    char *roles = join_roles(ap ? ap->roles : NULL);
    char *json = cont ? NULL : cq_request_encode(&j->req, NULL), *me = person_key(j);
    enum cq_rc rc = CQ_ENOMEM;
    if (rec && due && roles && me && (cont || json)) {
        w_job_op_begin(j);
        if (cont) {
            const char *argv[] = {"EVAL", GATE_LUA, "1", rec};
            rc = cq_redis_commandargv(j->w->redis, on_gate, j, 4, argv, NULL);
        } else {
            int exp = ap ? ap->expires_s : j->cfg->worker.confirm_expires_s;
            char need[16], at[24], ttl[16];
            snprintf(need, sizeof need, "%d", ap ? ap->count : 1);
            snprintf(at, sizeof at, "%lld", (long long)(now_ms() + (int64_t)exp * 1000));
            snprintf(ttl, sizeof ttl, "%d", exp + ENDED_TTL_S);
            const char *argv[] = {
                "EVAL", PARK_LUA, "2",  rec, due, j->req.id, confirm ? "confirm" : "approval",
                me,     roles,    need, at,  ttl, json};
            rc = cq_redis_commandargv(j->w->redis, on_parked, j, 13, argv, NULL);
        }
        if (rc != CQ_OK) j->ops--;
    }
    free(rec);
    free(due);
    free(roles);
    free(json);
    free(me);
    if (rc != CQ_OK) w_job_abandon(j, "could not park the request for approval");
    return true;
}

/* ---- clicks: approve / deny / confirm (and a Cancel button) ---- */

bool w_approval_decide(struct job *j) {
    const char *w = j->req.command;
    bool click = strcmp(w, "approve") == 0 || strcmp(w, "deny") == 0 || strcmp(w, "confirm") == 0 ||
                 (strcmp(w, "cancel") == 0 && j->req.action.name); /* the Cancel button */
    if (!click) return false;
    j->kind = JK_BUILTIN;
    w_policy_check(j->cfg, j->person, j->channel, w, NULL, &j->dec);
    j->status = "ok";
    j->ap_click = true;
    j->text = strdup("");
    return true;
}

/* One result on the parked request orig (its reply route, its id): the outcome that
 * replaces its buttons (progress PARK_SEQ + 1). */
static void produce_outcome(struct job *j, const struct cq_request *orig, const char *status,
                            const char *text) {
    char now[32], label[256];
    struct cq_result r = {0};
    cq_now_rfc3339(now);
    w_command_label(orig, label, sizeof label);
    r.request_id = orig->id;
    r.step = "progress";
    r.seq = PARK_SEQ + 1;
    r.status = (char *)status;
    r.platform = orig->platform;
    r.reply = orig->reply;
    r.text = (char *)text;
    r.command = label;
    r.user_name = orig->user_name;
    r.response_type = "in_channel";
    r.produced_at = now;
    r.buttons_kind = "done"; /* replaces the buttons (Feishu: the card is updated) */
    r.buttons_request_id = orig->id;
    w_produce(j, j->cfg->kafka.topic_results, orig->id, w_result_encode(&r, false));
}

/* The approved request again, to run once under the dedupe key approved:<id>. */
static void produce_continuation(struct job *j, struct cq_request *orig, const char *names) {
    char now[32], *key = cq_strprintf("approved:%s", orig->id);
    char *conv = cq_strprintf("%s:%s:%s", orig->platform, orig->tenant ? orig->tenant : "",
                              orig->channel_id ? orig->channel_id : "");
    cq_now_rfc3339(now);
    free(orig->received_at);
    free(orig->dedupe_key);
    free(orig->action.name);
    free(orig->action.value);
    free(orig->action.request_id);
    orig->received_at = strdup(now);
    orig->dedupe_key = key;
    orig->action.name = strdup("run");
    orig->action.value = strdup(names);
    orig->action.request_id = strdup(orig->id);
    orig->retry_num = 0;
    char *json = key && orig->received_at && orig->action.name && orig->action.value &&
                         orig->action.request_id
                     ? cq_request_encode(orig, NULL)
                     : NULL;
    if (json && conv)
        w_produce(j, j->cfg->kafka.topic_requests, conv, json);
    else {
        free(json);
        cq_error(j->req.id, "could not produce the approved request %s", orig->id);
    }
    free(conv);
}

static void on_click(void *opaque, const redisReply *reply, const struct cq_err *err) {
    struct job *j = opaque;
    struct cq_request orig = {0};
    const char *rid = j->argv.v[0], *act = j->req.command;
    if (w_job_gone(j)) goto done;
    if (redis_err(reply, err) || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) {
        w_job_abandon(j, "redis unavailable deciding a click");
        goto done;
    }
    const char *what = reply->element[0]->str ? reply->element[0]->str : "";
    const char *rq = reply->element[1]->str ? reply->element[1]->str : "";
    const char *detail = reply->element[2]->str ? reply->element[2]->str : "";
    bool have = *rq && cq_request_decode(rq, strlen(rq), 0, &orig, NULL) == CQ_OK;
    char label[256] = "";
    if (have) w_command_label(&orig, label, sizeof label);
    const char *status = "ok";
    char *text = NULL;
    if (strcmp(what, "approved") == 0 && have) {
        char *line = cq_strprintf("`%s`: approved by %s, running now.", label, detail);
        if (line) produce_outcome(j, &orig, "ok", line);
        free(line);
        produce_continuation(j, &orig, detail);
        text = cq_strprintf("You %s `%s` (req %s).",
                            strcmp(act, "confirm") == 0 ? "confirmed" : "approved", label, rid);
    } else if (strcmp(what, "denied") == 0 && have) {
        char *line = cq_strprintf("`%s`: %s by %s; it was NOT run.", label,
                                  strcmp(act, "deny") == 0 ? "denied" : "cancelled", detail);
        if (line) produce_outcome(j, &orig, "denied", line);
        free(line);
        text = cq_strprintf("You %s `%s` (req %s).",
                            strcmp(act, "deny") == 0 ? "denied" : "cancelled", label, rid);
    } else if (strcmp(what, "ended") == 0) {
        /* A late or repeated click, or the redelivery of one whose messages may not have
         * gone out: the outcome and the continuation again (the notifier posts a (request,
         * step, seq) once and the continuation runs once), the clicker told how it ended. */
        const char *colon = strchr(detail, ':');
        size_t sl = colon ? (size_t)(colon - detail) : strlen(detail);
        const char *by = colon ? colon + 1 : "";
        if (have && sl == 8 && strncmp(detail, "approved", 8) == 0) {
            char *line = cq_strprintf("`%s`: approved by %s, running now.", label, by);
            if (line) produce_outcome(j, &orig, "ok", line);
            free(line);
            produce_continuation(j, &orig, by);
        } else if (have && sl == 6 && strncmp(detail, "denied", 6) == 0) {
            char *line = cq_strprintf("`%s`: ended by %s; it was NOT run.", label, by);
            if (line) produce_outcome(j, &orig, "denied", line);
            free(line);
        }
        status = sl == 7 && strncmp(detail, "expired", 7) == 0 ? "timeout" : "ok";
        text = cq_strprintf("Request %s has already ended: %.*s%s%s.", rid, (int)sl, detail,
                            *by ? " by " : "", by);
    } else if (strcmp(what, "approved") == 0 || strcmp(what, "denied") == 0) {
        status = "failed"; /* decided, but the parked request could not be read back */
        text = cq_strprintf("%s was %s, but the parked request could not be read; it was NOT "
                            "run",
                            rid, what);
    } else if (strcmp(what, "counted") == 0) {
        text = cq_strprintf("Your approval of %s is counted (%s); waiting for more.", rid, detail);
    } else if (strcmp(what, "gone") == 0) {
        status = "invalid";
        text = cq_strprintf("Nothing waits for approval or confirmation as %s (it may have "
                            "expired).",
                            rid);
    } else if (strcmp(what, "self") == 0) {
        status = "denied";
        text = cq_strprintf("You cannot approve your own request %s: someone else must.", rid);
    } else if (strcmp(what, "role") == 0) {
        status = "denied";
        text = cq_strprintf("Approving %s needs one of the roles %.*s; you have none of them.", rid,
                            (int)(strlen(detail) > 2 ? strlen(detail) - 2 : 0),
                            detail + (*detail ? 1 : 0));
    } else if (strcmp(what, "twice") == 0) {
        text = cq_strprintf("You already approved %s; each person counts once.", rid);
    } else if (strcmp(what, "notyours") == 0) {
        status = "denied";
        text = cq_strprintf("Only the person who asked can confirm or cancel %s.", rid);
    } else {
        status = "invalid";
        text = cq_strprintf(
            "%s asks for %s, not `%s`.", rid,
            strcmp(detail, "confirm") == 0 ? "`confirm` or `deny`" : "`approve` or `deny`", act);
    }
    cq_info(j->req.id, "%s %s by %s: %s", act, rid, who(j), what);
    w_metric_approval(*what ? what : "unknown");
    w_finish_with(j, status, text);
done:
    cq_request_clear(&orig);
    w_job_op_end(j);
}

void w_approval_click(struct job *j) {
    if (j->argv.n != 1 || strlen(j->argv.v[0]) > CQ_ENV_MAX_ID) {
        w_finish_with(
            j, "invalid",
            cq_strprintf("usage: %s REQUEST_ID (the id in the request's message)", j->req.command));
        return;
    }
    const char *act = strcmp(j->req.command, "cancel") == 0 ? "deny" : j->req.command;
    char *rec = key_of(j, j->argv.v[0]), *due = key_of(j, NULL);
    char *roles = join_roles(j->person ? j->person->roles : NULL), now[24];
    char *me = person_key(j);
    enum cq_rc rc = CQ_ENOMEM;
    snprintf(now, sizeof now, "%lld", (long long)now_ms());
    if (rec && due && roles && me) {
        const char *argv[] = {"EVAL", CLICK_LUA, "2",   rec, due,         act,
                              me,     who(j),    roles, now, j->argv.v[0]};
        w_job_op_begin(j);
        rc = cq_redis_commandargv(j->w->redis, on_click, j, 11, argv, NULL);
        if (rc != CQ_OK) j->ops--;
    }
    free(rec);
    free(due);
    free(roles);
    free(me);
    if (rc != CQ_OK) w_job_abandon(j, "could not decide the click");
}

/* ---- expiry: a batch of due records per lease tick ---- */

struct sweep_msg {
    struct w_worker *w;
    char *due, *id;
};

static void on_expiry_delivered(void *opaque, enum cq_rc rc, const char *errstr, int32_t partition,
                                int64_t offset) {
    struct sweep_msg *m = opaque;
    (void)partition;
    (void)offset;
    if (rc == CQ_OK && m->w->redis && !m->w->torn_down) {
        const char *argv[] = {"ZREM", m->due, m->id};
        cq_redis_commandargv(m->w->redis, w_ignore_reply, NULL, 3, argv, NULL);
    } else if (rc != CQ_OK) {
        cq_warn(m->id, "expiry message not confirmed (%s); the next sweep retries", errstr);
    }
    free(m->due);
    free(m->id);
    free(m);
}

static void announce_expiry(struct w_worker *w, const char *due, const char *id, const char *rq) {
    struct cq_request orig = {0};
    struct cq_err err = {0};
    char now[32], label[256];
    if (cq_request_decode(rq, strlen(rq), 0, &orig, NULL) != CQ_OK) return;
    w_command_label(&orig, label, sizeof label);
    char *line = cq_strprintf("`%s`: nobody approved or confirmed it in time; it expired and "
                              "was NOT run.",
                              label);
    struct cq_result r = {.request_id = orig.id,
                          .step = "progress",
                          .seq = PARK_SEQ + 1,
                          .status = "timeout",
                          .platform = orig.platform,
                          .reply = orig.reply,
                          .text = line,
                          .command = label,
                          .user_name = orig.user_name,
                          .response_type = "in_channel",
                          .buttons_kind = "done",
                          .buttons_request_id = orig.id};
    cq_now_rfc3339(now);
    r.produced_at = now;
    char *json = line ? w_result_encode(&r, false) : NULL;
    struct sweep_msg *m = json ? calloc(1, sizeof(*m)) : NULL;
    if (m) {
        m->w = w;
        m->due = strdup(due);
        m->id = strdup(id);
    }
    if (m && m->due && m->id &&
        cq_producer_send(w->producer, w->cfg->kafka.topic_results, orig.id, strlen(orig.id), json,
                         strlen(json), NULL, on_expiry_delivered, m, &err) == CQ_OK) {
        cq_info(orig.id, "%s expired unapproved", label);
        w_metric_approval("expired");
        m = NULL;
    }
    if (m) {
        free(m->due);
        free(m->id);
        free(m);
    }
    free(json);
    free(line);
    cq_request_clear(&orig);
}

static void on_sweep(void *opaque, const redisReply *reply, const struct cq_err *err) {
    char *due = opaque;
    struct w_worker *w = NULL;
    memcpy(&w, due, sizeof(w)); /* the worker rides in front of the key */
    if (!redis_err(reply, err) && reply->type == REDIS_REPLY_ARRAY && !w->torn_down)
        for (size_t i = 0; i + 1 < reply->elements; i += 2)
            if (reply->element[i]->str && reply->element[i + 1]->str)
                announce_expiry(w, due + sizeof(w), reply->element[i]->str,
                                reply->element[i + 1]->str);
    free(due);
}

void w_approval_sweep(struct w_worker *w) {
    const char *p = w->cfg->redis.prefix ? w->cfg->redis.prefix : "";
    char *key = cq_strprintf("%sapproval:due", p), *rec = cq_strprintf("%sapproval:", p);
    char now[24], batch[16], lease[16];
    char *due = key ? malloc(sizeof(w) + strlen(key) + 1) : NULL;
    if (!w->redis || w->torn_down || !due || !rec) {
        free(key);
        free(rec);
        free(due);
        return;
    }
    memcpy(due, &w, sizeof(w));
    strcpy(due + sizeof(w), key);
    snprintf(now, sizeof now, "%lld", (long long)now_ms());
    snprintf(batch, sizeof batch, "%d", SWEEP_BATCH);
    snprintf(lease, sizeof lease, "%d", SWEEP_LEASE_MS);
    const char *argv[] = {"EVAL", SWEEP_LUA, "1", key, now, rec, batch, lease};
    if (cq_redis_commandargv(w->redis, on_sweep, due, 8, argv, NULL) != CQ_OK) free(due);
    free(key);
    free(rec);
}
