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
      var next = signIn.dataset.next || "";
      // Only a path on this site (the server checked it too): never another origin.
      if (next.charAt(0) !== "/" || next.charAt(1) === "/" || next.charAt(1) === "\\") {
        next = "/dashboard/";
      }
      if (clerk.user) { window.location.assign(next); return; }
      clerk.mountSignIn(signIn, { forceRedirectUrl: next });
    }
    var signedOut = document.getElementById("clerk-sign-out");
    if (signedOut) {
      clerk.signOut({ redirectUrl: "/dashboard/sign-in" });
    }
    var switcher = document.getElementById("clerk-switch");
    if (switcher) {
      clerk.setActive({ organization: switcher.dataset.organization }).then(function () {
        window.location.assign("/dashboard/");
      });
    }
  });
})();
