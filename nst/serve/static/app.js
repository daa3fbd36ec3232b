// The nst page: submit a transfer, follow its event stream (progress, previews), show the result beside the
// photo, cancel, download; the loss curve sits under "Advanced".
// Plain browser APIs only, so the page works offline from the server that serves it.
"use strict";

const $ = (id) => document.getElementById(id);
const STRENGTHS = [
  ["very light", 20], ["light", 50], ["medium", 100], ["strong", 200], ["very strong", 500],
];
let token = sessionStorage.getItem("nst-token") || "";
let job = null;
let losses = [];
let resultUrl = null;
let photoUrl = null;
let photoSize = null; // [width, height] of the chosen photo, for the result's size before it arrives

function say(text, error = false) {
  $("message").textContent = text;
  $("message").classList.toggle("error", error);
}

async function api(path, init = {}) {
  const headers = Object.assign({}, init.headers || {}, token ? { Authorization: "Bearer " + token } : {});
  const response = await fetch(path, Object.assign({}, init, { headers }));
  if (response.status === 401 || response.status === 403) {
    $("token-box").hidden = false;
  }
  return response;
}

async function reason(response) {
  try {
    return (await response.json()).error || response.statusText;
  } catch (e) {
    return response.statusText;
  }
}

async function styleFile() {
  const choice = document.querySelector("input[name=painting]:checked").value;
  if (choice === "own") {
    return $("own").files[0] || null;
  }
  const response = await fetch("static/paintings/" + choice);
  return new File([await response.blob()], choice, { type: "image/jpeg" });
}

function options() {
  return {
    size: Number($("size").value),
    iterations: Number($("iterations").value),
    style_weight: STRENGTHS[Number($("strength").value)][1],
  };
}

async function start(event) {
  event.preventDefault();
  const photo = $("photo").files[0];
  const style = await styleFile();
  if (!photo) return say("Choose a photo first.", true);
  if (!style) return say("Choose a painting, or a file of your own.", true);
  const form = new FormData();
  form.append("content", photo);
  form.append("style", style);
  form.append("options", JSON.stringify(options()));
  resetView(options().size);
  $("start").disabled = true;
  say("Uploading...");
  const response = await api("v1/transfers", { method: "POST", body: form });
  if (response.status !== 202) {
    $("start").disabled = false;
    return say(await reason(response), true);
  }
  job = (await response.json()).id;
  $("cancel").disabled = false;
  say("Queued.");
  follow(job).catch((e) => say("Lost the connection: " + e.message, true));
}

function resetView(size) {
  losses = [];
  drawLoss();
  $("bar").value = 0;
  $("bar").hidden = false;
  $("time").hidden = true;
  $("download").hidden = true;
  $("compare").hidden = true;
  $("frame").hidden = true;
  $("live").removeAttribute("src");
  if (resultUrl) URL.revokeObjectURL(resultUrl);
  resultUrl = null;
  const [w, h] = fitted(size);
  $("live").style.width = shownWidth(w) + "px"; // previews are smaller than the result: shown at its size
  $("live").style.aspectRatio = `${w} / ${h}`;
}

// A small result is enlarged by a whole factor (each pixel a sharp square) to fill up to 512 px, never more.
function shownWidth(width) {
  return width * Math.max(1, Math.floor(Math.min(512, $("message").clientWidth) / width));
}

// The result's size: the photo's longest side brought to `size`, as the engine does.
function fitted(size) {
  if (!photoSize) return [size, size];
  const [w, h] = photoSize;
  const scale = size / Math.max(w, h);
  return [Math.max(1, Math.round(w * scale)), Math.max(1, Math.round(h * scale))];
}

// Pixels shown larger than they are stay sharp squares instead of a blur.
function sharpWhenEnlarged(img) {
  img.classList.toggle("enlarged", img.naturalWidth > 0 && img.naturalWidth < img.clientWidth);
}

function clock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${r}` : `${m}:${r}`;
}

// Server-sent events read through fetch, so the token can travel in a header (EventSource sends none).
async function follow(id) {
  const response = await api(`v1/transfers/${id}/events`);
  if (!response.ok) return say(await reason(response), true);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = (block.match(/^event: (.*)$/m) || [])[1];
      const data = (block.match(/^data: (.*)$/m) || [])[1];
      if (event && data && (await handle(id, event, JSON.parse(data)))) return;
    }
  }
}

async function handle(id, event, data) {
  if (id !== job) return true; // a newer job took over the page
  if (event === "progress") showProgress(data.status, data.progress);
  if (event === "preview") {
    $("live").src = "data:image/jpeg;base64," + data.jpeg;
    $("frame").hidden = false;
  }
  if (event === "done") await finished(id);
  if (event === "failed") say("Failed: " + data.error, true);
  if (event === "cancelled") say("Cancelled.");
  if (["done", "failed", "cancelled"].includes(event)) {
    $("time").hidden = event === "done" ? $("time").hidden : true;
    $("start").disabled = false;
    $("cancel").disabled = true;
    return true;
  }
  return false;
}

function showProgress(status, p) {
  if (!p || !p.scales) return say(status === "queued" ? "Waiting for a free worker..." : "Preparing...");
  // The server weighs each pass by its work (pixels x iterations): the small first passes are quick.
  const fraction = p.fraction ?? (p.scale + p.iteration / p.iterations) / p.scales;
  $("bar").value = fraction;
  say(`Painting: ${Math.floor(fraction * 100)}% done`);
  if (p.elapsed !== undefined) {
    const left = p.left === null || p.left === undefined ? "estimating the time left" : `about ${clock(p.left)} left`;
    $("time").textContent = `${clock(p.elapsed)} so far, ${left}`;
    $("time").hidden = false;
  }
  if (p.loss !== null && isFinite(p.loss) && p.loss > 0) {
    losses.push({ scale: p.scale, loss: p.loss });
    drawLoss();
  }
}

async function finished(id) {
  const response = await api(`v1/transfers/${id}/result`);
  if (!response.ok) return say(await reason(response), true);
  resultUrl = URL.createObjectURL(await response.blob());
  $("after").src = resultUrl;
  await $("after").decode().catch(() => {});
  const w = $("after").naturalWidth;
  $("compare").querySelector(".compare-box").style.width = shownWidth(w) + "px"; // whole factors only
  $("before").src = photoUrl;
  $("frame").hidden = true;
  $("compare").hidden = false;
  sharpWhenEnlarged($("after"));
  sharpWhenEnlarged($("before"));
  $("bar").value = 1;
  $("bar").hidden = true;
  $("download").href = resultUrl;
  $("download").download = `nst-${id.slice(0, 8)}.png`;
  $("download").hidden = false;
  const took = $("time").hidden ? "" : ` It took ${$("time").textContent.split(" so far")[0]}.`;
  $("time").hidden = true;
  say(`Done. Slide to compare your photo with the result.${took}`);
}

// The loss on a log scale, one colour per scale of a coarse-to-fine run.
function drawLoss() {
  const canvas = $("loss");
  const g = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 8;
  g.clearRect(0, 0, w, h);
  g.fillStyle = "#5c6577";
  g.font = "11px system-ui, sans-serif";
  g.fillText("loss (log scale)", pad, 12);
  if (losses.length < 2) return;
  const logs = losses.map((p) => Math.log10(p.loss));
  const low = Math.min(...logs), high = Math.max(...logs), span = high - low || 1;
  const colours = ["#2a5bd7", "#d7732a", "#2aa05b", "#a02a8c"];
  g.lineWidth = 2;
  for (let i = 1; i < losses.length; i++) {
    if (losses[i].scale !== losses[i - 1].scale) continue;
    const x = (k) => pad + ((w - 2 * pad) * k) / (losses.length - 1);
    const y = (k) => h - pad - ((h - 2 * pad - 14) * (logs[k] - low)) / span;
    g.strokeStyle = colours[losses[i].scale % colours.length];
    g.beginPath();
    g.moveTo(x(i - 1), y(i - 1));
    g.lineTo(x(i), y(i));
    g.stroke();
  }
}

async function cancel() {
  if (!job) return;
  $("cancel").disabled = true;
  const response = await api(`v1/transfers/${job}`, { method: "DELETE" });
  if (!response.ok) say(await reason(response), true);
}

function showPhoto() {
  const file = $("photo").files[0];
  if (!file) return;
  if (photoUrl) URL.revokeObjectURL(photoUrl);
  photoUrl = URL.createObjectURL(file);
  $("photo-preview").src = photoUrl;
  $("photo-preview").hidden = false;
  $("photo-preview").decode().then(
    () => (photoSize = [$("photo-preview").naturalWidth, $("photo-preview").naturalHeight]),
    () => (photoSize = null),
  );
}

$("form").addEventListener("submit", start);
$("cancel").addEventListener("click", cancel);
$("photo").addEventListener("change", showPhoto);
$("own").addEventListener("change", () => {
  document.querySelector("input[name=painting][value=own]").checked = true;
});
$("size").addEventListener("input", () => ($("size-out").textContent = $("size").value));
$("live").addEventListener("load", () => sharpWhenEnlarged($("live")));
$("split").addEventListener("input", () => $("compare").style.setProperty("--split", $("split").value + "%"));
$("strength").addEventListener("input", () => ($("strength-out").textContent = STRENGTHS[$("strength").value][0]));
$("token-save").addEventListener("click", () => {
  token = $("token").value.trim();
  sessionStorage.setItem("nst-token", token);
  $("token-box").hidden = true;
  say("Token set.");
});
api("healthz").then((r) => r.ok || say("Enter this server's token above.", true));
drawLoss();
