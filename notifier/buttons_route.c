/* buttons_route: which Feishu results take part in replacing a card's buttons (issue 16):
 * the parked request's card (buttons "approval" / "confirm") is remembered when delivered, and
 * its outcome (buttons "done", a progress step) updates that card in place (feishu_update.c). */
#include "buttons.h"
#include "notifier_int.h"

bool ntf_buttons_shown(const struct job *j) {
    const char *k = j->r.buttons_kind;
    return j->plat == P_FEISHU && k && (strcmp(k, "approval") == 0 || strcmp(k, "confirm") == 0);
}

bool ntf_buttons_resolved(const struct job *j) {
    const char *k = j->r.buttons_kind;
    return j->plat == P_FEISHU && k && strcmp(k, "done") == 0 && j->r.step &&
           strcmp(j->r.step, "progress") == 0;
}
