// The page's strings, translated by the server into the interface language (chat/strings.py), and number
// formatting in that language rather than the browser's.

const config = JSON.parse(document.getElementById("chat-config").textContent);
const STRINGS = config.strings || {};
export const LANGUAGE = document.documentElement.lang || "en";

// `t("page", { page: 3 })` fills Python-style %(name)s placeholders.
export function t(key, params = {}) {
  const text = STRINGS[key] ?? key;
  return text.replace(/%\((\w+)\)s/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

export function formatNumber(value) {
  return Number(value).toLocaleString(LANGUAGE);
}
