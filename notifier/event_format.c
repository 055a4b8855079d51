/* event_format: see event_format.h. */
#include "event_format.h"

#include <string.h>

struct row {
    const char *word;
    struct ntf_event_look look;
};

static const struct row ROWS[] = {
    {"fixed", {":white_check_mark:", "✅", "Fixed", "green"}},
    {"broken", {":boom:", "💥", "Broken", "red"}},
    {"success", {":white_check_mark:", "✅", "Succeeded", "green"}},
    {"failed", {":x:", "❌", "Failed", "red"}},
    {"running", {":hourglass_flowing_sand:", "⏳", "Running", "wathet"}},
    {"pending", {":hourglass:", "⏳", "Pending", "wathet"}},
    {"created", {":hourglass:", "⏳", "Created", "wathet"}},
    {"canceled", {":white_circle:", "⚪", "Canceled", "grey"}},
    {"skipped", {":white_circle:", "⚪", "Skipped", "grey"}},
    {"manual", {":raised_hand:", "✋", "Waiting for a click", "orange"}},
    {"blocked", {":raised_hand:", "✋", "Blocked", "orange"}},
    {"merge", {":twisted_rightwards_arrows:", "🔀", "Merged", "purple"}},
    {"merged", {":twisted_rightwards_arrows:", "🔀", "Merged", "purple"}},
    {"open", {":new:", "🆕", "Opened", "blue"}},
    {"opened", {":new:", "🆕", "Opened", "blue"}},
    {"close", {":no_entry_sign:", "🚫", "Closed", "grey"}},
    {"closed", {":no_entry_sign:", "🚫", "Closed", "grey"}},
};

bool ntf_event_look(const struct cq_result *r, struct ntf_event_look *out) {
    if (!r || !r->event_kind || !*r->event_kind) return false;
    const char *w = r->event_status ? r->event_status : "";
    for (size_t i = 0; i < sizeof(ROWS) / sizeof(ROWS[0]); i++)
        if (strcmp(ROWS[i].word, w) == 0) {
            *out = ROWS[i].look;
            return true;
        }
    *out = (struct ntf_event_look){":loudspeaker:", "📣", "GitLab", "blue"};
    return true;
}
