// The pages that show a new secret once (an API key, a webhook endpoint's signing secret): a
// button that copies it. Without the Clipboard API (an insecure origin, an old browser) the
// button selects the text instead, for the usual copy shortcut. The button's
// data-copy-noun names what it copies ("key" unless said).
(function () {
  "use strict";

  function say(button, text) {
    var status = button.parentNode.querySelector("[data-copy-status]");
    if (status) {
      status.textContent = text;
    }
  }

  function select(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function copy(button) {
    var target = document.getElementById(button.getAttribute("data-copy-target"));
    if (!target) {
      return;
    }
    var text = target.textContent.trim();
    var noun = button.getAttribute("data-copy-noun") || "key";
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () {
          button.textContent = "Copied";
          say(button, "The " + noun + " is on your clipboard.");
        },
        function () {
          select(target);
          say(button, "Copying was refused: the " + noun + " is selected, copy it yourself.");
        }
      );
    } else {
      select(target);
      say(button, "The " + noun + " is selected: copy it (Ctrl+C or ⌘C).");
    }
  }

  var buttons = document.querySelectorAll("button[data-copy-target]");
  for (var i = 0; i < buttons.length; i++) {
    buttons[i].hidden = false;
    buttons[i].addEventListener("click", function (event) {
      copy(event.currentTarget);
    });
  }
})();
