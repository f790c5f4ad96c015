// The admin token: from the URL fragment (#token=..., which browsers never send to the server),
// kept in this tab's sessionStorage, asked for in a small form when missing or refused.

const KEY = "ridehail.adminToken";

export function takeToken() {
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const token = fragment.get("token");
  if (token) {
    sessionStorage.setItem(KEY, token);
    // Out of the address bar, so it is not bookmarked, shared or left in the history.
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
  return sessionStorage.getItem(KEY);
}

export function forgetToken() {
  sessionStorage.removeItem(KEY);
}

export function askForToken(form, message = "") {
  form.querySelector("[data-k='token-error']").textContent = message;
  form.hidden = false;
  form.elements.token.focus();
  return new Promise((resolve) => {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const token = form.elements.token.value.trim();
      sessionStorage.setItem(KEY, token);
      form.hidden = true;
      resolve(token);
    }, { once: true });
  });
}
