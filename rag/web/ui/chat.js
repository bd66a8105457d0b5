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

  // Gradio keeps the chat scrolled to its bottom, so a long answer (on a phone: answer and sources) would show
  // only the end of its sources. While the newest answer is coming in, whenever Gradio has scrolled to the bottom
  // past its start, bring its start back; a reader who scrolled elsewhere is left alone.
  let changed = 0;
  let pending = null;
  const scroller = (node) => {
    for (let n = node.parentElement; n; n = n.parentElement) {
      if (n.scrollHeight > n.clientHeight && /auto|scroll/.test(getComputedStyle(n).overflowY)) return n;
    }
    return null;
  };
  const reveal = () => {
    pending = null;
    if (Date.now() - changed > 2000) return;
    const answers = document.querySelectorAll("#cc-chat .cc-message[id]");
    const newest = answers[answers.length - 1];
    const box = newest && scroller(newest);
    if (!box || box.scrollTop + box.clientHeight < box.scrollHeight - 2) return;
    const above = newest.getBoundingClientRect().top - box.getBoundingClientRect().top;
    if (above < 0) box.scrollTop += above - 8;
  };
  // Look after each change and each scroll (Gradio's own comes 300 ms after an update), at most every 450 ms.
  const later = () => { pending = pending || setTimeout(reveal, 450); };
  new MutationObserver(() => { changed = Date.now(); later(); })
    .observe(document.body, { childList: true, subtree: true, characterData: true });
  document.addEventListener("scroll", later, { capture: true, passive: true });
}
