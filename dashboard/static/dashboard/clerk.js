// Clerk's browser script signs operators in (production) and switches the active
// organization; Clerk then keeps the __session cookie fresh for the dashboard.
(function () {
  "use strict";
  function whenClerkLoaded(callback) {
    if (window.Clerk) { window.Clerk.load().then(function () { callback(window.Clerk); }); return; }
    setTimeout(function () { whenClerkLoaded(callback); }, 50);
  }
  whenClerkLoaded(function (clerk) {
    var signIn = document.getElementById("clerk-sign-in");
    if (signIn) {
      var next = signIn.dataset.next || "/dashboard/";
      if (clerk.user) { window.location.assign(next); return; }
      clerk.mountSignIn(signIn, { forceRedirectUrl: next });
    }
    var switcher = document.getElementById("clerk-switch");
    if (switcher) {
      clerk.setActive({ organization: switcher.dataset.organization }).then(function () {
        window.location.assign("/dashboard/");
      });
    }
  });
})();
