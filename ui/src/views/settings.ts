// Server, account, language, start at login, notifications, pull interval,
// the conflict policy and the title field per entity type, and saving
// diagnostics. The password goes to the engine and is never stored here;
// no command ever hands a token back.
import { api, errorText } from "../api";
import type { ConflictPolicy } from "../bindings/ConflictPolicy";
import type { Settings } from "../bindings/Settings";
import type { Ctx, View } from "../ctx";
import { clear, h, keepFocus } from "../dom";
import { t } from "../i18n";

export const POLICIES: ConflictPolicy[] = ["lww", "server-wins", "client-wins", "merge", "manual"];

export const INTERVALS: number[] = [30, 60, 300, 900, 3600];

/** The language choices: the setting's value → its message. Each language
 * is named in itself, so it can be found whatever the window shows. */
export const LANGUAGES: [string, string][] = [["system", "settings-language-system"], ["nb", "settings-language-nb"], ["en", "settings-language-en"]];

export function settings(ctx: Ctx): View {
  const el = h("section", { class: "view settings", "data-testid": "view-settings" });
  const heading = h("h1", { tabindex: -1 }, t("settings-title"));
  const body = h("div", { class: "settings-body" });
  el.append(h("div", { class: "toolbar" }, heading), body);
  let current: Settings | null = null;
  let includeRecords = false;

  async function act(p: Promise<unknown>, ok: string) {
    try { await p; ctx.toast(ok); } catch (e) { ctx.toast(errorText(e), "error"); }
    await reload();
  }

  function render() {
    keepFocus(body, () => paint(), () => heading);
  }

  function paint() {
    clear(body);
    const s = current;
    if (!s) return;
    const info = ctx.info();
    const server = h("input", { type: "url", value: s.server ?? "", placeholder: "https://sync.example.org", "data-testid": "server-url", "aria-label": t("settings-server-address") });
    body.append(h("fieldset", {}, h("legend", {}, t("settings-server")),
      h("div", { class: "row" }, server,
        h("button", { "data-testid": "server-save", onclick: () => void act(api.setServer(server.value), t("toast-server-saved")), disabled: info?.demo }, t("save"))),
      info?.demo ? h("p", { class: "muted" }, t("settings-demo")) : null));

    if (s.user) {
      body.append(h("fieldset", {}, h("legend", {}, t("settings-account")),
        h("div", { class: "row" }, h("span", { "data-testid": "signed-in-as" }, t("settings-signed-in-as", { user: s.user })),
          h("button", { "data-testid": "sign-out", onclick: () => void act(api.logout(), t("toast-signed-out")) }, t("settings-sign-out")))));
    } else {
      const user = h("input", { type: "text", autocomplete: "username", placeholder: t("settings-user"), "aria-label": t("settings-user"), "data-testid": "login-user" });
      const pw = h("input", { type: "password", autocomplete: "current-password", placeholder: t("settings-password"), "aria-label": t("settings-password"), "data-testid": "login-password" });
      const form = h("form", { class: "row" }, user, pw, h("button", { class: "primary", type: "submit", "data-testid": "sign-in" }, t("settings-sign-in")));
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        const p = api.login(user.value, pw.value);
        pw.value = ""; // the password lives no longer than the request
        void act(p, t("toast-signed-in"));
      });
      body.append(h("fieldset", {}, h("legend", {}, t("settings-account")), form));
    }

    const language = h("select", { id: "settings-language", "data-testid": "language" },
      LANGUAGES.map(([v, id]) => h("option", { value: v, selected: v === s.language, lang: v === "system" ? null : v }, t(id))));
    language.addEventListener("change", () => void act(api.setLanguage(language.value), t("toast-saved")));
    const autostart = h("input", { type: "checkbox", checked: s.autostart, "data-testid": "autostart" });
    autostart.addEventListener("change", () => void act(api.setAutostart(autostart.checked), autostart.checked ? t("toast-autostart-on") : t("toast-autostart-off")));
    const notes = h("input", { type: "checkbox", checked: s.notifications, "data-testid": "notifications" });
    notes.addEventListener("change", () => void act(api.setNotifications(notes.checked), notes.checked ? t("toast-notifications-on") : t("toast-notifications-off")));
    const interval = h("select", { id: "settings-interval", "data-testid": "pull-interval" },
      INTERVALS.map((secs) => h("option", { value: secs, selected: secs === s.pull_interval_secs }, t("settings-interval", { secs }))));
    if (!INTERVALS.includes(s.pull_interval_secs)) {
      interval.append(h("option", { value: s.pull_interval_secs, selected: true }, t("settings-interval", { secs: s.pull_interval_secs })));
    }
    interval.addEventListener("change", () => void act(api.setPullInterval(Number(interval.value)), t("toast-saved")));
    body.append(h("fieldset", {}, h("legend", {}, t("settings-this-computer")),
      h("div", { class: "row" }, h("label", { for: "settings-language" }, t("settings-language")), language),
      h("label", { class: "check" }, autostart, t("settings-autostart")),
      h("label", { class: "check" }, notes, t("settings-notifications")),
      h("div", { class: "row" }, h("label", { for: "settings-interval" }, t("settings-interval-label")), interval)));

    body.append(h("fieldset", {}, h("legend", {}, t("settings-records")),
      h("p", { class: "muted small" }, t("settings-records-explain")),
      h("table", { class: "policies" },
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, t("settings-col-entity")),
          h("th", { scope: "col" }, t("settings-col-policy")),
          h("th", { scope: "col" }, t("settings-col-title-field")))),
        h("tbody", {}, s.policies.map((row) => {
          const sel = h("select", { "data-testid": `policy-${row.entity}`, "aria-label": t("settings-policy-for", { entity: row.entity }) },
            POLICIES.map((p) => h("option", { value: p, selected: p === row.policy }, t(`policy-${p}`))));
          sel.addEventListener("change", () => void act(api.setPolicy(row.entity, sel.value as ConflictPolicy), t("toast-policy-saved", { entity: row.entity })));
          const title = h("input", {
            type: "text", value: row.title_field ?? "", placeholder: t("settings-title-field-default"),
            "data-testid": `title-field-${row.entity}`, "aria-label": t("settings-title-field-for", { entity: row.entity }),
            spellcheck: "false", autocomplete: "off",
          });
          const saveTitle = () => {
            const v = title.value.trim();
            if (v === (row.title_field ?? "")) return;
            void act(api.setTitleField(row.entity, v === "" ? null : v), t("toast-title-field-saved", { entity: row.entity }));
          };
          title.addEventListener("change", saveTitle);
          title.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); saveTitle(); } });
          return h("tr", {}, h("th", { scope: "row" }, row.entity), h("td", {}, sel), h("td", {}, title));
        })))));

    const include = h("input", { type: "checkbox", checked: includeRecords, "data-testid": "diagnostics-records" });
    include.addEventListener("change", () => { includeRecords = include.checked; });
    body.append(h("fieldset", {}, h("legend", {}, t("settings-diagnostics")),
      h("p", { class: "muted small" }, t("settings-diagnostics-explain")),
      h("label", { class: "check" }, include, t("settings-diagnostics-records")),
      h("div", { class: "row" }, h("button", {
        "data-testid": "save-diagnostics",
        onclick: () => void saveDiagnostics(),
      }, t("settings-diagnostics-save")))));
    if (info) body.append(h("p", { class: "muted small" }, t("settings-about", { version: info.version, dir: info.data_dir })));
  }

  async function saveDiagnostics() {
    try {
      const path = await api.saveDiagnostics(includeRecords);
      ctx.toast(t("toast-diagnostics-saved", { path }), "ok", 15_000);
    } catch (e) { ctx.toast(errorText(e), "error"); }
  }

  async function reload() {
    try { current = await api.settings(); } catch (e) { ctx.toast(errorText(e), "error"); }
    render();
  }

  const ready = reload();
  let lastUser: string | null | undefined;
  return {
    el,
    ready,
    refresh() {
      const u = ctx.status().user;
      if (u !== lastUser) { lastUser = u; void reload(); }
    },
  };
}
