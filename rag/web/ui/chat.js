() => {
  // Citation markers [n] link to the numbered source under the same answer: scroll to it and flash it.
  // Gradio may rewrite in-message links, so the click is handled here rather than by the browser.
  document.addEventListener("click", (event) => {
    const marker = event.target.closest ? event.target.closest("a.cc-marker") : null;
    if (!marker) return;
    event.preventDefault();
    const id = marker.getAttribute("data-cite") || (marker.getAttribute("href") || "").slice(1);
    const message = marker.closest(".cc-message") || document;
    const target = Array.from(message.querySelectorAll(".cc-source")).find((el) => el.id === id)
      || document.getElementById(id);
    if (!target) return;
    target.scrollIntoView({ behavior: "smooth", block: "nearest" });
    target.classList.remove("cc-flash");
    void target.offsetWidth;
    target.classList.add("cc-flash");
  }, true);
}
