// Server, account, start at login, notifications, pull interval and the
// conflict policy per entity type. The password goes to the engine and is
// never stored here; no command ever hands a token back.
import { api, errorText } from "../api";
import type { ConflictPolicy } from "../bindings/ConflictPolicy";
import type { Settings } from "../bindings/Settings";
import type { Ctx, View } from "../ctx";
import { clear, h } from "../dom";

export const POLICIES: [ConflictPolicy, string][] = [
  ["lww", "Last edit wins"],
  ["server-wins", "Server wins"],
  ["client-wins", "This device wins"],
  ["merge", "Merge fields"],
  ["manual", "Ask me"],
];

export const INTERVALS: [number, string][] = [
  [30, "every 30 seconds"], [60, "every minute"], [300, "every 5 minutes"], [900, "every 15 minutes"], [3600, "every hour"],
];

export function settings(ctx: Ctx): View {
  const el = h("section", { class: "view settings", "data-testid": "view-settings" });
  let current: Settings | null = null;

  async function act(p: Promise<unknown>, ok: string) {
    try { await p; ctx.toast(ok); } catch (e) { ctx.toast(errorText(e), "error"); }
    await reload();
  }

  function render() {
    clear(el);
    el.append(h("div", { class: "toolbar" }, h("h1", {}, "Settings")));
    const s = current;
    if (!s) return;
    const info = ctx.info();
    const server = h("input", { type: "url", value: s.server ?? "", placeholder: "https://sync.example.org", "data-testid": "server-url", "aria-label": "Server address" });
    el.append(h("fieldset", {}, h("legend", {}, "Server"),
      h("div", { class: "row" }, server,
        h("button", { onclick: () => void act(api.setServer(server.value), "Server saved"), disabled: info?.demo }, "Save")),
      info?.demo ? h("p", { class: "muted" }, "Demo mode: an embedded server with sample data; your real setup is untouched.") : null));

    if (s.user) {
      el.append(h("fieldset", {}, h("legend", {}, "Account"),
        h("div", { class: "row" }, h("span", { "data-testid": "signed-in-as" }, `Signed in as ${s.user}`),
          h("button", { "data-testid": "sign-out", onclick: () => void act(api.logout(), "Signed out") }, "Sign out"))));
    } else {
      const user = h("input", { type: "text", autocomplete: "username", placeholder: "User name", "aria-label": "User name", "data-testid": "login-user" });
      const pw = h("input", { type: "password", autocomplete: "current-password", placeholder: "Password", "aria-label": "Password", "data-testid": "login-password" });
      const form = h("form", { class: "row" }, user, pw, h("button", { class: "primary", type: "submit", "data-testid": "sign-in" }, "Sign in"));
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        const p = api.login(user.value, pw.value);
        pw.value = ""; // the password lives no longer than the request
        void act(p, "Signed in");
      });
      el.append(h("fieldset", {}, h("legend", {}, "Account"), form));
    }

    const autostart = h("input", { type: "checkbox", checked: s.autostart, "data-testid": "autostart" });
    autostart.addEventListener("change", () => void act(api.setAutostart(autostart.checked), autostart.checked ? "Ferry starts at login" : "Ferry no longer starts at login"));
    const notes = h("input", { type: "checkbox", checked: s.notifications, "data-testid": "notifications" });
    notes.addEventListener("change", () => void act(api.setNotifications(notes.checked), notes.checked ? "Notifications on" : "Notifications off"));
    const interval = h("select", { "data-testid": "pull-interval", "aria-label": "Check the server" },
      INTERVALS.map(([secs, label]) => h("option", { value: secs, selected: secs === s.pull_interval_secs }, label)));
    if (!INTERVALS.some(([secs]) => secs === s.pull_interval_secs)) {
      interval.append(h("option", { value: s.pull_interval_secs, selected: true }, `every ${s.pull_interval_secs} s`));
    }
    interval.addEventListener("change", () => void act(api.setPullInterval(Number(interval.value)), "Saved"));
    el.append(h("fieldset", {}, h("legend", {}, "This computer"),
      h("label", { class: "check" }, autostart, " Start Ferry at login"),
      h("label", { class: "check" }, notes, " Show notifications (summaries only: conflicts, failures, sign-in, stalls)"),
      h("label", {}, "Check the server for others' changes ", interval)));

    el.append(h("fieldset", {}, h("legend", {}, "When both sides changed a record"),
      h("table", { class: "policies" }, h("tbody", {}, s.policies.map((row) => {
        const sel = h("select", { "data-testid": `policy-${row.entity}`, "aria-label": `Policy for ${row.entity}` },
          POLICIES.map(([p, label]) => h("option", { value: p, selected: p === row.policy }, label)));
        sel.addEventListener("change", () => void act(api.setPolicy(row.entity, sel.value as ConflictPolicy), `Policy for ${row.entity} saved`));
        return h("tr", {}, h("th", { scope: "row" }, row.entity), h("td", {}, sel));
      })))));
    if (info) el.append(h("p", { class: "muted small" }, `Ferry ${info.version} · data in ${info.data_dir}`));
  }

  async function reload() {
    try { current = await api.settings(); } catch (e) { ctx.toast(errorText(e), "error"); }
    render();
  }

  void reload();
  let lastUser: string | null | undefined;
  return {
    el,
    refresh() {
      const u = ctx.status().user;
      if (u !== lastUser) { lastUser = u; void reload(); }
    },
  };
}
