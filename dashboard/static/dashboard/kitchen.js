// The kitchen queue: fetch the queue fragment every 10 s and swap it in; a new order flashes
// its card and, once the cook has switched sound on, plays a short chime (Web Audio, no files).
(function () {
  "use strict";

  var REFRESH_MS = 10000;
  var FLASH_MS = 4000;
  var SOUND_KEY = "nordkestrel.kitchen.sound";

  var queue = document.getElementById("kitchen-queue");
  if (!queue || !window.fetch) {
    return;
  }
  var source = queue.getAttribute("data-src");
  var updated = document.getElementById("kitchen-updated");
  var announce = document.getElementById("kitchen-announce");
  var toggle = document.getElementById("kitchen-sound");
  var audio = null;
  var soundOn = false;
  var known = orderIds(queue);

  function orderIds(root) {
    var ids = {};
    root.querySelectorAll("[data-order-id]").forEach(function (card) {
      ids[card.getAttribute("data-order-id")] = true;
    });
    return ids;
  }

  function setStatus(text) {
    if (updated) {
      updated.textContent = text;
    }
  }

  // Screen readers hear arrivals and failures, not every refresh.
  function say(text) {
    if (announce) {
      announce.textContent = text;
    }
  }

  // Storage can be switched off (or throw) in private windows: sound then starts off.
  function remembered() {
    try {
      return window.localStorage.getItem(SOUND_KEY) === "on";
    } catch (error) {
      return false;
    }
  }

  function remember(on) {
    try {
      window.localStorage.setItem(SOUND_KEY, on ? "on" : "off");
    } catch (error) {
      // Not remembered; the toggle still works for this page.
    }
  }

  // Browsers only let a page make sound after a user gesture: the toggle is that gesture.
  function startAudio() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) {
      return false;
    }
    audio = audio || new Context();
    if (audio.state === "suspended") {
      audio.resume().catch(function () {
        // Still blocked until the next gesture; the chime stays silent meanwhile.
      });
    }
    return true;
  }

  function chime() {
    if (!soundOn || !audio) {
      return;
    }
    var start = audio.currentTime;
    [880, 1320].forEach(function (frequency, index) {
      var oscillator = audio.createOscillator();
      var gain = audio.createGain();
      var at = start + index * 0.18;
      oscillator.type = "sine";
      oscillator.frequency.setValueAtTime(frequency, at);
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.3, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.16);
      oscillator.connect(gain);
      gain.connect(audio.destination);
      oscillator.start(at);
      oscillator.stop(at + 0.17);
    });
  }

  function showSound() {
    toggle.textContent = soundOn ? "Sound off" : "Sound on";
  }

  if (toggle) {
    toggle.hidden = false;
    // Remembered, but still needs this page's first tap before a browser plays anything.
    soundOn = remembered();
    showSound();
    toggle.addEventListener("click", function () {
      soundOn = !soundOn && startAudio();
      remember(soundOn);
      showSound();
      chime();
    });
    if (soundOn) {
      document.addEventListener("pointerdown", startAudio, { once: true });
    }
  }

  // Someone typing a cancel reason or with a menu open keeps their form until they are done.
  function busy() {
    var active = document.activeElement;
    if (active && queue.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName)) {
      return true;
    }
    return queue.querySelector("details[open]") !== null;
  }

  function swap(html) {
    var template = document.createElement("template");
    template.innerHTML = html;
    var fresh = template.content.getElementById("kitchen-queue");
    if (!fresh) {
      throw new Error("not a queue");
    }
    var arrived = [];
    fresh.querySelectorAll("[data-order-id]").forEach(function (card) {
      if (!known[card.getAttribute("data-order-id")]) {
        card.classList.add("is-arrival");
        arrived.push(card);
      }
    });
    queue.replaceChildren.apply(queue, Array.prototype.slice.call(fresh.childNodes));
    known = orderIds(queue);
    setStatus("Updated " + (fresh.getAttribute("data-updated") || ""));
    if (arrived.length) {
      say(
        arrived.length === 1
          ? "New order " + (arrived[0].getAttribute("data-number") || "")
          : arrived.length + " new orders"
      );
      chime();
      window.setTimeout(function () {
        arrived.forEach(function (card) {
          card.classList.remove("is-arrival");
        });
      }, FLASH_MS);
    }
  }

  function refresh() {
    if (document.hidden || busy()) {
      return;
    }
    fetch(source, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok || response.redirected) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(swap)
      .catch(function () {
        var text = "Could not update the queue; reload the page if this persists.";
        setStatus(text);
        say(text);
      });
  }

  window.setInterval(refresh, REFRESH_MS);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) {
      refresh();
    }
  });
})();
