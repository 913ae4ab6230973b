// "Try it" on the API page: sends the GET a form describes with the viewer's own session cookie and shows
// the answer. Path parameters are filled into the path; the rest go into the query string.
const MAX_SHOWN = 200000;

function requestUrl(form) {
  let path = form.dataset.path;
  const query = new URLSearchParams();
  for (const field of form.querySelectorAll("[data-in]")) {
    const value = field.value.trim();
    if (field.dataset.in === "path") {
      path = path.replace(`{${field.name}}`, encodeURIComponent(value));
    } else if (value !== "") {
      query.append(field.name, value);
    }
  }
  const search = query.toString();
  return search ? `${path}?${search}` : path;
}

async function shownBody(response) {
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) {
    const text = await response.text();
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      return text;
    }
  }
  if (type.startsWith("text/")) {
    return (await response.text()).slice(0, MAX_SHOWN);
  }
  const size = response.headers.get("Content-Length");
  return `(${type || "binary"} answer${size ? `, ${size} bytes` : ""}: not shown)`;
}

document.addEventListener("submit", async (event) => {
  const form = event.target.closest("form.try-it");
  if (!form) return;
  event.preventDefault();
  const result = form.querySelector(".try-result");
  const status = form.querySelector(".try-status");
  const body = form.querySelector(".try-body");
  const url = requestUrl(form);
  result.hidden = false;
  status.textContent = `GET ${url} …`;
  body.textContent = "";
  try {
    const response = await fetch(url, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      redirect: "manual",
    });
    const where = response.type === "opaqueredirect" ? " (a redirect to a download link)" : "";
    status.textContent = `GET ${url} → ${response.status || 303} ${response.statusText}${where}`;
    body.textContent = response.type === "opaqueredirect" ? "" : (await shownBody(response)).slice(0, MAX_SHOWN);
  } catch (error) {
    status.textContent = `GET ${url} failed: ${error}`;
  }
});
