// The payment page: Stripe's Payment Element takes the card (inside Stripe's frame, so card
// details never touch this page), and Stripe sends the diner back to our return address.
(function () {
  "use strict";

  var form = document.getElementById("payment-form");
  if (!form) return;
  var message = document.getElementById("payment-message");
  var loading = document.getElementById("payment-loading");
  var button = document.getElementById("pay-button");

  function say(text) {
    message.textContent = text;
  }

  if (typeof window.Stripe !== "function") {
    loading.hidden = true;
    say("The secure payment form could not be loaded. Check your connection and reload this page.");
    return;
  }

  // A direct charge lives on the restaurant's connected account: Stripe.js must act on it.
  var stripe = window.Stripe(form.getAttribute("data-publishable-key"), {
    stripeAccount: form.getAttribute("data-stripe-account"),
  });
  var elements = stripe.elements({ clientSecret: form.getAttribute("data-client-secret") });
  var paymentElement = elements.create("payment");
  paymentElement.on("ready", function () {
    loading.hidden = true;
    button.disabled = false;
  });
  paymentElement.mount("#payment-element");

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    button.disabled = true;
    say("");
    stripe
      .confirmPayment({
        elements: elements,
        confirmParams: { return_url: form.getAttribute("data-return-url") },
      })
      .then(
        function (result) {
          // Reached only when the payment could not go ahead; otherwise Stripe redirects.
          var error = result && result.error;
          if (error && (error.type === "card_error" || error.type === "validation_error")) {
            say(error.message);
          } else {
            say("Something went wrong with the payment. Please try again.");
          }
          button.disabled = false;
        },
        function () {
          say("Something went wrong with the payment. Please try again.");
          button.disabled = false;
        }
      );
  });
})();
